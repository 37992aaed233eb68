-- Schema 3 of the cardform state database (SQLite).
-- Every order records the run that sent it (`sent_serial`), so its charge belongs to that run even
-- when a later run (a resume, a refresh) saw it finish; `serial` stays the last run that wrote it.
-- Orders journaled before schema 3 are given to the last run that had started when they were
-- journaled: a run journals an order just before sending it.

ALTER TABLE orders ADD COLUMN sent_serial INTEGER REFERENCES runs (serial);
UPDATE orders SET sent_serial = coalesce(
    (SELECT max(r.serial) FROM runs r WHERE r.at <= orders.created_at),
    orders.serial
);
CREATE INDEX orders_by_sent_serial ON orders (sent_serial);

-- The currency money is charged in (the master balance's), recorded by the first run that talks
-- to the provider, so reports that read only state can print it beside every amount.
ALTER TABLE state_info ADD COLUMN currency TEXT;
