-- Schema 6 of a cardform state (PostgreSQL): the change log's tombstones indexed; see the SQLite
-- migration of the same number for why.
CREATE INDEX changes_tombstones ON changes (resource_kind, resource_key) WHERE image IS NULL;
