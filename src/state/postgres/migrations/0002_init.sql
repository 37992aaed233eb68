-- A cardform state in PostgreSQL, created at schema 2 (the first schema PostgreSQL states have).
-- The same tables and ideas as the SQLite backend's schema 2; every statement runs with
-- search_path set to this state's own schema, so several states share a database side by side.
-- Money is TEXT holding an exact decimal, never a float. Timestamps are RFC 3339 TEXT.
-- Keys compare byte by byte (COLLATE "C"), as cardform orders them, whatever the database's locale.
-- No table has a column that could hold a card number or CVV: last4 at most.

CREATE TABLE cardform_migrations (
    version     BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);

CREATE TABLE state_info (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    lineage TEXT    NOT NULL,
    serial  BIGINT  NOT NULL CHECK (serial >= 0)
);

CREATE TABLE runs (
    serial      BIGINT PRIMARY KEY,
    at          TEXT NOT NULL,
    finished_at TEXT,
    actor       TEXT NOT NULL,
    host        TEXT NOT NULL,
    command     TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE cards (
    key              TEXT COLLATE "C" PRIMARY KEY,
    external_user_id TEXT    NOT NULL,
    product_code     TEXT    NOT NULL,
    initial_topup    TEXT,
    desired_status   TEXT    NOT NULL,
    labels           TEXT    NOT NULL DEFAULT '{}',
    card_id          TEXT,
    phase            TEXT    NOT NULL,
    provider_status  TEXT,
    last4            TEXT CHECK (last4 IS NULL OR length(last4) <= 4),
    charged          TEXT    NOT NULL DEFAULT '0',
    attempt          BIGINT  NOT NULL,
    replaced_by      TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    serial           BIGINT  NOT NULL REFERENCES runs (serial)
);

CREATE TABLE orders (
    seq              BIGSERIAL PRIMARY KEY,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    resource_kind    TEXT    NOT NULL,
    resource_key     TEXT COLLATE "C" NOT NULL,
    kind             TEXT    NOT NULL,
    attempt          BIGINT  NOT NULL,
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
    serial           BIGINT  NOT NULL REFERENCES runs (serial)
);
CREATE INDEX orders_by_resource ON orders (resource_kind, resource_key);
CREATE INDEX orders_not_terminal ON orders (phase) WHERE phase IN ('prepared', 'open');

CREATE TABLE changes (
    resource_kind TEXT   NOT NULL,
    resource_key  TEXT COLLATE "C" NOT NULL,
    serial        BIGINT NOT NULL REFERENCES runs (serial),
    image         TEXT,
    PRIMARY KEY (resource_kind, resource_key, serial)
);
CREATE INDEX changes_by_serial ON changes (serial);

CREATE TABLE calls (
    id              BIGSERIAL PRIMARY KEY,
    at              TEXT   NOT NULL,
    at_us           BIGINT NOT NULL,
    endpoint        TEXT   NOT NULL,
    idempotency_key TEXT,
    order_id        TEXT,
    resource_kind   TEXT,
    resource_key    TEXT,
    result          TEXT   NOT NULL,
    charge          TEXT
);
CREATE INDEX calls_by_time ON calls (at_us);

-- Who holds the lock, for messages; the lock itself is a session advisory lock that dies with its
-- connection, so a row here whose lock is free was left by a holder that died.
CREATE TABLE lock (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    lock_id TEXT    NOT NULL UNIQUE,
    pid     BIGINT  NOT NULL,
    host    TEXT    NOT NULL,
    actor   TEXT    NOT NULL,
    command TEXT    NOT NULL,
    since   TEXT    NOT NULL
);

CREATE TABLE observed_fees (
    product_code    TEXT PRIMARY KEY,
    charge          TEXT NOT NULL,
    observed_at     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL
);
