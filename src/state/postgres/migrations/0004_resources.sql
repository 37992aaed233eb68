-- Schema 4 of a cardform state (PostgreSQL): `resources`, the current record of every resource
-- that is not a card, and `cards.balance`. See the SQLite migration of the same number for what
-- they hold and for the rule that backfills top-up records from the journal.

CREATE TABLE resources (
    resource_kind TEXT   NOT NULL,
    resource_key  TEXT COLLATE "C" NOT NULL,
    image         TEXT   NOT NULL,
    serial        BIGINT NOT NULL REFERENCES runs (serial),
    created_at    TEXT   NOT NULL,
    updated_at    TEXT   NOT NULL,
    PRIMARY KEY (resource_kind, resource_key)
);

ALTER TABLE cards ADD COLUMN balance TEXT;

INSERT INTO resources (resource_kind, resource_key, image, serial, created_at, updated_at)
SELECT DISTINCT ON (o.resource_key)
       'topup', o.resource_key,
       json_build_object(
           'kind', 'topup',
           'card', split_part(o.resource_key, ':', 1),
           'id', substr(o.resource_key, strpos(o.resource_key, ':') + 1),
           'amount', o.request::json ->> 'amount',
           'labels', json_build_object(),
           'attempt', o.attempt,
           'phase', o.phase,
           'charge', o.charge,
           'error_slug', o.error_slug)::text,
       o.serial,
       (SELECT min(f.created_at) FROM orders AS f
         WHERE f.resource_kind = 'topup' AND f.resource_key = o.resource_key),
       o.updated_at
FROM orders AS o
WHERE o.resource_kind = 'topup' AND o.request::json ->> 'amount' IS NOT NULL
ORDER BY o.resource_key, o.attempt DESC, o.seq DESC;

INSERT INTO changes (resource_kind, resource_key, serial, image)
SELECT r.resource_kind, r.resource_key, r.serial,
       json_build_object('address', r.resource_kind || '.' || r.resource_key,
                         'image', r.image::json,
                         'created_at', r.created_at,
                         'updated_at', r.updated_at)::text
FROM resources AS r
ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image;
