-- Schema 5 of the cardform state database (SQLite): the same facts in fewer bytes per card.
-- * Card images written to `changes` from now on are positional JSON arrays without the key (see
--   `codec::card_image`). The object images already logged stay as they are: both forms read.
-- * A call made for a journaled order names the order (`order_seq`) instead of repeating its
--   idempotency key and resource, which the order row holds and `state mv` keeps current. A call
--   with no such order keeps its own columns.
-- * `at` is kept only when it is not exactly what `at_us` formats to; every call this build
--   writes is, so new rows hold NULL there. Rows already written keep their text.

CREATE TABLE calls_v5 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us           INTEGER NOT NULL,
    at              TEXT,
    endpoint        TEXT    NOT NULL,
    order_seq       INTEGER REFERENCES orders (seq),
    idempotency_key TEXT,
    order_id        TEXT,
    resource_kind   TEXT,
    resource_key    TEXT,
    result          TEXT    NOT NULL,
    charge          TEXT
);
INSERT INTO calls_v5 (id, at_us, at, endpoint, order_seq, idempotency_key, order_id,
                      resource_kind, resource_key, result, charge)
SELECT c.id, c.at_us, c.at, c.endpoint, o.seq,
       CASE WHEN o.seq IS NULL THEN c.idempotency_key END,
       c.order_id,
       CASE WHEN o.seq IS NULL THEN c.resource_kind END,
       CASE WHEN o.seq IS NULL THEN c.resource_key END,
       c.result, c.charge
FROM calls AS c
LEFT JOIN orders AS o
       ON o.idempotency_key = c.idempotency_key
      AND o.resource_kind = c.resource_kind
      AND o.resource_key = c.resource_key;
DROP TABLE calls;
ALTER TABLE calls_v5 RENAME TO calls;
CREATE INDEX calls_by_time ON calls (at_us);
