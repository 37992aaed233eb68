-- Schema 5 of a cardform state (PostgreSQL): the same facts in fewer bytes per card. See the
-- SQLite migration of the same number for what changes: positional card images from now on, and
-- calls that name their order (`order_seq`) instead of repeating its key and resource.

CREATE TABLE calls_v5 (
    id              BIGSERIAL PRIMARY KEY,
    at_us           BIGINT NOT NULL,
    at              TEXT,
    endpoint        TEXT   NOT NULL,
    order_seq       BIGINT REFERENCES orders (seq),
    idempotency_key TEXT,
    order_id        TEXT,
    resource_kind   TEXT,
    resource_key    TEXT,
    result          TEXT   NOT NULL,
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
ALTER INDEX calls_v5_pkey RENAME TO calls_pkey;
-- Ids were copied, so the sequence starts after the last one.
SELECT setval(pg_get_serial_sequence('calls', 'id'), coalesce(max(id), 0) + 1, false) FROM calls;
CREATE INDEX calls_by_time ON calls (at_us);
