-- Schema 1 of the cardform state database.
-- Money is TEXT holding an exact decimal, never REAL. Timestamps are RFC 3339 TEXT.
-- No table has a column that could hold a card number or CVV: last4 at most.

-- One row: the lineage (set once at creation) and the serial of the latest run.
CREATE TABLE state_info (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    lineage TEXT    NOT NULL,
    serial  INTEGER NOT NULL CHECK (serial >= 0)
);

-- One row per command that wrote state; serial is the run's own number.
CREATE TABLE runs (
    serial      INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    finished_at TEXT,
    user        TEXT NOT NULL,
    host        TEXT NOT NULL,
    command     TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '{}'
);

-- The managed cards as of the latest serial.
CREATE TABLE cards (
    key              TEXT PRIMARY KEY,
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
    attempt          INTEGER NOT NULL,
    replaced_by      TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    serial           INTEGER NOT NULL REFERENCES runs (serial)
) WITHOUT ROWID;

-- The order journal: written before the mutation is sent.
CREATE TABLE orders (
    idempotency_key  TEXT PRIMARY KEY,
    card_key         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
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
CREATE INDEX orders_by_card ON orders (card_key);
CREATE INDEX orders_not_terminal ON orders (phase) WHERE phase IN ('prepared', 'open');

-- The change log: the after-image of every card touched in a run (NULL image = removed).
CREATE TABLE changes (
    key    TEXT    NOT NULL,
    serial INTEGER NOT NULL REFERENCES runs (serial),
    image  TEXT,
    PRIMARY KEY (key, serial)
) WITHOUT ROWID;
CREATE INDEX changes_by_serial ON changes (serial);

-- Audit: every provider call that changed something.
CREATE TABLE calls (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT    NOT NULL,
    at_us           INTEGER NOT NULL,
    endpoint        TEXT    NOT NULL,
    idempotency_key TEXT,
    order_id        TEXT,
    card_key        TEXT,
    result          TEXT    NOT NULL,
    charge          TEXT
);
CREATE INDEX calls_by_time ON calls (at_us);

-- The state lock: at most one row.
CREATE TABLE lock (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    lock_id TEXT    NOT NULL UNIQUE,
    pid     INTEGER NOT NULL,
    host    TEXT    NOT NULL,
    user    TEXT    NOT NULL,
    command TEXT    NOT NULL,
    since   TEXT    NOT NULL
);

-- Per product, the most recent real charge of a completed issue order without a top-up: the
-- fee estimate of last resort. Maintained on write so a snapshot never scans the journal.
CREATE TABLE observed_fees (
    product_code    TEXT PRIMARY KEY,
    charge          TEXT NOT NULL,
    observed_at     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL
) WITHOUT ROWID;
