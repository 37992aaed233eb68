-- Schema 2 of the cardform state database (SQLite).
-- The order journal, the change log and the call audit name resources by address (kind + key),
-- so any kind of resource, with any number of open orders each, fits one journal. No column has
-- a name PostgreSQL reserves (`user` becomes `actor`). Versions are recorded in
-- `cardform_migrations`; PRAGMA user_version follows it so older releases refuse this file.

CREATE TABLE cardform_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);
-- Schema 1 predates this table: recorded here as applied, whenever that was.
INSERT INTO cardform_migrations (version, description, applied_at)
VALUES (1, 'init', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

ALTER TABLE runs RENAME COLUMN user TO actor;
ALTER TABLE lock RENAME COLUMN user TO actor;

CREATE TABLE orders_v2 (
    -- Journal order: resumes replay open orders in the order they were journaled.
    seq              INTEGER PRIMARY KEY,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    resource_kind    TEXT    NOT NULL,
    resource_key     TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    -- The request as journaled: fields a kind marks personal hold a keyed digest, not the value.
    request          TEXT    NOT NULL,
    order_id         TEXT,
    phase            TEXT    NOT NULL,
    provider_status  TEXT,
    sub_status       TEXT,
    error_slug       TEXT,
    error_message    TEXT,
    estimated_charge TEXT,
    charge           TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    serial           INTEGER NOT NULL REFERENCES runs (serial)
);
INSERT INTO orders_v2
SELECT rowid, idempotency_key, 'card', card_key, kind, attempt, request, order_id, phase,
       provider_status, sub_status, error_slug, error_message, estimated_charge, charge,
       created_at, updated_at, serial
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
CREATE INDEX orders_by_resource ON orders (resource_kind, resource_key);
CREATE INDEX orders_not_terminal ON orders (phase) WHERE phase IN ('prepared', 'open');

CREATE TABLE changes_v2 (
    resource_kind TEXT    NOT NULL,
    resource_key  TEXT    NOT NULL,
    serial        INTEGER NOT NULL REFERENCES runs (serial),
    image         TEXT,
    PRIMARY KEY (resource_kind, resource_key, serial)
) WITHOUT ROWID;
INSERT INTO changes_v2 SELECT 'card', key, serial, image FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v2 RENAME TO changes;
CREATE INDEX changes_by_serial ON changes (serial);

CREATE TABLE calls_v2 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT    NOT NULL,
    at_us           INTEGER NOT NULL,
    endpoint        TEXT    NOT NULL,
    idempotency_key TEXT,
    order_id        TEXT,
    resource_kind   TEXT,
    resource_key    TEXT,
    result          TEXT    NOT NULL,
    charge          TEXT
);
INSERT INTO calls_v2
SELECT id, at, at_us, endpoint, idempotency_key, order_id,
       CASE WHEN card_key IS NULL THEN NULL ELSE 'card' END, card_key, result, charge
FROM calls;
DROP TABLE calls;
ALTER TABLE calls_v2 RENAME TO calls;
CREATE INDEX calls_by_time ON calls (at_us);
