-- Schema 8 of the cardform state database (SQLite): plans that wait for approval. `cardform
-- serve` applies a plan on its own only within policy; one outside it is recorded here, pending,
-- with its reasons and the digest of its actions, until someone approves it (and a later
-- reconcile applies that very plan) or a newer plan supersedes it. Nothing personal: the summary
-- is counts and money, the reasons name limits.
CREATE TABLE approvals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    digest          TEXT NOT NULL,
    summary         TEXT NOT NULL,
    reasons         TEXT NOT NULL,
    approved_by     TEXT,
    approved_at     TEXT,
    approved_serial INTEGER,
    applied_serial  INTEGER
);
CREATE INDEX approvals_open ON approvals (status);
