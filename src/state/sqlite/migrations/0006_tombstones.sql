-- Schema 6 of the cardform state database (SQLite): the change log's tombstones indexed, so a
-- snapshot finds the keys that left state (`state rm`, or a card moved to another key) without
-- reading the log. A key declared again must not send its old issue order's idempotency key with
-- another request, nor take back a card that now belongs to another key.
CREATE INDEX changes_tombstones ON changes (resource_kind, resource_key) WHERE image IS NULL;
