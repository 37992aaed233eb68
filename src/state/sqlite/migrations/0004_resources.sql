-- Schema 4 of the cardform state database (SQLite).
-- `resources` holds the current record of every resource that is not a card (top-ups now; users
-- and cardholders next), one JSON image per address, tagged with its kind. Like a card, each write
-- of one also logs its after-image in `changes`, so history, diff and export replay every kind.
-- `cards.balance` is the card's own balance as the provider last reported it (refresh).

CREATE TABLE resources (
    resource_kind TEXT    NOT NULL,
    resource_key  TEXT    NOT NULL,
    -- The record as JSON: `{"kind": "topup", ...}` (see `ResourceImage`).
    image         TEXT    NOT NULL,
    serial        INTEGER NOT NULL REFERENCES runs (serial),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (resource_kind, resource_key)
) WITHOUT ROWID;

ALTER TABLE cards ADD COLUMN balance TEXT;

-- A record for every top-up the journal already holds, from its latest attempt: what it sent, how
-- it ended, what it was charged. Schema 3 kept no top-up labels, so these records have none; the
-- first run of this build that sends or relabels a top-up records its declared labels.
INSERT INTO resources (resource_kind, resource_key, image, serial, created_at, updated_at)
SELECT 'topup', o.resource_key,
       json_object(
           'kind', 'topup',
           'card', substr(o.resource_key, 1, instr(o.resource_key, ':') - 1),
           'id', substr(o.resource_key, instr(o.resource_key, ':') + 1),
           'amount', json_extract(o.request, '$.amount'),
           'labels', json_object(),
           'attempt', o.attempt,
           'phase', o.phase,
           'charge', o.charge,
           'error_slug', o.error_slug),
       o.serial,
       (SELECT min(f.created_at) FROM orders AS f
         WHERE f.resource_kind = 'topup' AND f.resource_key = o.resource_key),
       o.updated_at
FROM orders AS o
WHERE o.resource_kind = 'topup'
  AND json_extract(o.request, '$.amount') IS NOT NULL
  AND o.seq = (SELECT l.seq FROM orders AS l
                WHERE l.resource_kind = 'topup' AND l.resource_key = o.resource_key
                ORDER BY l.attempt DESC, l.seq DESC LIMIT 1);

-- Each backfilled record enters the change log under the run that last wrote its order, as the
-- whole record (address, image, times), the way every later write logs it.
INSERT INTO changes (resource_kind, resource_key, serial, image)
SELECT r.resource_kind, r.resource_key, r.serial,
       json_object('address', r.resource_kind || '.' || r.resource_key,
                   'image', json(r.image),
                   'created_at', r.created_at,
                   'updated_at', r.updated_at)
FROM resources AS r
WHERE true
ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image;
