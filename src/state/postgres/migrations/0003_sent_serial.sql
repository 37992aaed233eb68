-- Schema 3 of a cardform state (PostgreSQL): every order records the run that sent it, so its
-- charge belongs to that run even when a later run saw it finish. See the SQLite migration of the
-- same number for the rule that fills it for orders journaled before.

ALTER TABLE orders ADD COLUMN sent_serial BIGINT REFERENCES runs (serial);
UPDATE orders SET sent_serial = coalesce(
    (SELECT max(r.serial) FROM runs r WHERE r.at <= orders.created_at),
    orders.serial
);
ALTER TABLE orders ALTER COLUMN sent_serial SET NOT NULL;
CREATE INDEX orders_by_sent_serial ON orders (sent_serial);

-- The currency money is charged in (the master balance's), recorded by the first run that talks
-- to the provider, so reports that read only state can print it beside every amount.
ALTER TABLE state_info ADD COLUMN currency TEXT;
