//! The statement texts of the write seam (`seam::Tx`) and the reads both backends share, in one
//! place: one constant where SQLite and PostgreSQL read the same text (SQLite takes `$1`
//! placeholders too), a [`Dialects`] pair, side by side, where they differ. Bind order is the
//! placeholders' order. How rows are read back is `codec`'s (and `sqlite/rows.rs`'s). Must not
//! run queries.

/// One statement in each dialect, where the two differ.
pub(super) struct Dialects {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// The columns of an order as the journal binds them (`$1`..`$18`), then `serial` (`$19`).
macro_rules! order_insert {
    ($tail:literal) => {
        concat!(
            "INSERT INTO orders (idempotency_key, resource_kind, resource_key, kind, attempt, \
               request, order_id, phase, provider_status, sub_status, error_slug, error_message, \
               estimated_charge, charge, created_at, updated_at, sent_serial, refunded, serial) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
               $18, $19) ",
            $tail
        )
    };
}

/// A new journal entry; nothing when the key is taken.
pub(super) const INSERT_ORDER: &str = order_insert!("ON CONFLICT (idempotency_key) DO NOTHING");

/// An entry's progress; the `WHERE` leaves an entry of another identity untouched (no row
/// affected), which is the journal-conflict rule's evidence.
pub(super) const UPSERT_ORDER: &str = order_insert!(
    "ON CONFLICT (idempotency_key) DO UPDATE SET \
       order_id = excluded.order_id, phase = excluded.phase, \
       provider_status = excluded.provider_status, sub_status = excluded.sub_status, \
       error_slug = excluded.error_slug, error_message = excluded.error_message, \
       estimated_charge = excluded.estimated_charge, charge = excluded.charge, \
       refunded = excluded.refunded, updated_at = excluded.updated_at, \
       serial = excluded.serial \
     WHERE orders.resource_kind = excluded.resource_kind \
       AND orders.resource_key = excluded.resource_key AND orders.kind = excluded.kind \
       AND orders.attempt = excluded.attempt AND orders.request = excluded.request"
);

/// A card row, `$1`..`$16` in `card_columns!` order, then `serial` (`$17`). SQLite replaces the
/// row whole, as it always has.
pub(super) const WRITE_CARD: Dialects = Dialects {
    sqlite: "INSERT OR REPLACE INTO cards (key, external_user_id, product_code, initial_topup, \
         desired_status, labels, card_id, phase, provider_status, last4, charged, attempt, \
         replaced_by, created_at, updated_at, balance, serial) \
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    postgres: "INSERT INTO cards (key, external_user_id, product_code, initial_topup, \
         desired_status, labels, card_id, phase, provider_status, last4, charged, attempt, \
         replaced_by, created_at, updated_at, balance, serial) \
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
       ON CONFLICT (key) DO UPDATE SET external_user_id = excluded.external_user_id, \
         product_code = excluded.product_code, initial_topup = excluded.initial_topup, \
         desired_status = excluded.desired_status, labels = excluded.labels, \
         card_id = excluded.card_id, phase = excluded.phase, \
         provider_status = excluded.provider_status, last4 = excluded.last4, \
         charged = excluded.charged, attempt = excluded.attempt, \
         replaced_by = excluded.replaced_by, created_at = excluded.created_at, \
         updated_at = excluded.updated_at, balance = excluded.balance, serial = excluded.serial",
};

pub(super) const DELETE_CARD: &str = "DELETE FROM cards WHERE key = $1";

/// A resource row: kind, key, image, serial, created, updated.
pub(super) const WRITE_RESOURCE: &str = "INSERT INTO resources (resource_kind, resource_key, \
       image, serial, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (resource_kind, resource_key) DO UPDATE SET image = excluded.image, \
       serial = excluded.serial, created_at = excluded.created_at, \
       updated_at = excluded.updated_at";

pub(super) const DELETE_RESOURCE: &str =
    "DELETE FROM resources WHERE resource_kind = $1 AND resource_key = $2";

/// Only the last image per (resource, serial) matters: history is per run, not per write.
pub(super) const LOG_CHANGE: &str = "INSERT INTO changes (resource_kind, resource_key, serial, \
       image) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image";

/// Card `$2`'s journal, audit and replacement links re-keyed to `$1`.
pub(super) const REKEY_CARD: [&str; 3] = [
    "UPDATE orders SET resource_key = $1 WHERE resource_kind = 'card' AND resource_key = $2",
    "UPDATE calls SET resource_key = $1 WHERE resource_kind = 'card' AND resource_key = $2",
    "UPDATE cards SET replaced_by = $1 WHERE replaced_by = $2",
];

/// Its top-ups' journal and audit rows (`OLD:ID` in the key range `$3`..`$4`) re-keyed to `$1`
/// followed by what comes after character `$2` (PostgreSQL binds `$2` as `int4`).
pub(super) const REKEY_TOPUPS: [&str; 2] = [
    "UPDATE orders SET resource_key = $1 || substr(resource_key, $2) \
     WHERE resource_kind = 'topup' AND resource_key >= $3 AND resource_key < $4",
    "UPDATE calls SET resource_key = $1 || substr(resource_key, $2) \
     WHERE resource_kind = 'topup' AND resource_key >= $3 AND resource_key < $4",
];

/// Most recent wins; an older order recorded late (a resumed run) does not overwrite it.
pub(super) const OBSERVE_FEE: &str = "INSERT INTO observed_fees (product_code, charge, \
       observed_at, idempotency_key) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (product_code) DO UPDATE SET charge = excluded.charge, \
       observed_at = excluded.observed_at, idempotency_key = excluded.idempotency_key \
     WHERE excluded.observed_at >= observed_fees.observed_at";

/// A call made for a journaled order (the order is journaled before it is sent) names it by
/// `order_seq`; only a call with no such order keeps its own key and resource. Binds: at_us, at,
/// endpoint, idempotency key, order id, resource kind, resource key, result, charge.
pub(super) const INSERT_CALL: &str = "INSERT INTO calls (at_us, at, endpoint, order_seq, \
       idempotency_key, order_id, resource_kind, resource_key, result, charge) \
     SELECT n.at_us, n.at, n.endpoint, o.seq, \
            CASE WHEN o.seq IS NULL THEN n.idempotency_key END, n.order_id, \
            CASE WHEN o.seq IS NULL THEN n.resource_kind END, \
            CASE WHEN o.seq IS NULL THEN n.resource_key END, n.result, n.charge \
     FROM (SELECT CAST($1 AS BIGINT) AS at_us, CAST($2 AS TEXT) AS at, \
                  CAST($3 AS TEXT) AS endpoint, CAST($4 AS TEXT) AS idempotency_key, \
                  CAST($5 AS TEXT) AS order_id, CAST($6 AS TEXT) AS resource_kind, \
                  CAST($7 AS TEXT) AS resource_key, CAST($8 AS TEXT) AS result, \
                  CAST($9 AS TEXT) AS charge) AS n \
     LEFT JOIN orders AS o ON o.idempotency_key = n.idempotency_key \
           AND o.resource_kind = n.resource_kind AND o.resource_key = n.resource_key";

/// The fencing check: the lock row still names `$1`. PostgreSQL holds it against a takeover
/// (which deletes it) until this transaction ends; SQLite's `BEGIN IMMEDIATE` already does.
pub(super) const HOLDS_LOCK: Dialects = Dialects {
    sqlite: "SELECT 1 FROM lock WHERE lock_id = $1",
    postgres: "SELECT 1 FROM lock WHERE lock_id = $1 FOR SHARE",
};

/// The SQL both backends read [`super::journal::card_costs`]'s rows with.
pub(super) const CHARGED_ORDERS_SQL: &str = "SELECT resource_kind, resource_key, charge, refunded \
     FROM orders WHERE charge IS NOT NULL AND resource_kind IN ('card', 'topup')";

/// The condition both backends select [`super::Store::refunds_unknown`]'s orders by (a filter
/// of `Tx::orders_where`).
pub(super) const REFUND_UNKNOWN: &str = "phase = 'failed' AND charge IS NOT NULL \
     AND refunded IS NULL AND order_id IS NOT NULL";

/// One order's cost as the terms [`super::journal::attach_charges`] sums, in SQL both dialects
/// read: its charge, then its refund negated (see [`super::money::order_cost`]).
macro_rules! order_cost_terms {
    () => {
        "charge || coalesce(' -' || refunded, '')"
    };
}

/// The SQL both backends count each run's top-up orders with: `(sent_serial, count)`.
pub(super) const TOPUPS_SENT_SQL: &str = "SELECT sent_serial, count(*) FROM orders \
     WHERE kind = 'topup' GROUP BY sent_serial";

/// The keys that left state, by the change log's tombstones (an index of them: schema 6), that
/// no card record holds now. SQLite is told the index, since its planner prefers the primary
/// key's `resource_kind` range (every card's change log, 0.3 s at a million cards) even after
/// `ANALYZE`.
macro_rules! removed_card_keys {
    ($index:literal) => {
        concat!(
            "SELECT DISTINCT t.resource_key FROM changes AS t ",
            $index,
            " WHERE t.resource_kind = 'card' AND t.image IS NULL \
               AND NOT EXISTS (SELECT 1 FROM cards WHERE cards.key = t.resource_key)"
        )
    };
}

/// The keys that left state (see `removed_card_keys!`).
pub(super) const REMOVED_CARD_KEYS: Dialects = Dialects {
    sqlite: removed_card_keys!("INDEXED BY changes_tombstones"),
    postgres: removed_card_keys!(""),
};

/// The SQL both backends read top-ups with.
pub(super) const TOPUPS_SQL: &str = "SELECT resource_key, attempt, phase, request, charge, \
     error_slug, refunded FROM orders WHERE resource_kind = 'topup' ORDER BY seq";

/// The serial goes up by one; the new one comes back.
pub(super) const NEXT_SERIAL: &str =
    "UPDATE state_info SET serial = serial + 1 WHERE id = 1 RETURNING serial";

/// A run: serial, at, finished at, actor, host, command, summary.
pub(super) const INSERT_RUN: &str = "INSERT INTO runs (serial, at, finished_at, actor, host, \
       command, summary) VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(super) const FINISH_RUN: &str =
    "UPDATE runs SET finished_at = $1, summary = $2 WHERE serial = $3";

/// What every card says it cost, for the schema-7 recomputation.
pub(super) const STORED_CHARGES: &str = "SELECT key, charged FROM cards";

/// Who holds the lock, as its row says (each backend reads the row its own way).
pub(super) const SELECT_LOCK: &str =
    "SELECT lock_id, pid, host, actor, command, since FROM lock WHERE id = 1";

/// The lock row: lock id, pid, host, actor, command, since.
pub(super) const INSERT_LOCK: &str = "INSERT INTO lock (id, lock_id, pid, host, actor, command, \
       since) VALUES (1, $1, $2, $3, $4, $5, $6)";

/// The lock row of `$1` removed (`force-unlock`, once the rule in `lock` allowed it).
pub(super) const DELETE_LOCK: &str = "DELETE FROM lock WHERE lock_id = $1";

/// The serial and the number of runs of a state about to be loaded into; PostgreSQL locks the
/// row against a second load (SQLite's `BEGIN IMMEDIATE` already does).
pub(super) const LOAD_TARGET: Dialects = Dialects {
    sqlite: "SELECT serial, (SELECT count(*) FROM runs) FROM state_info WHERE id = 1",
    postgres: "SELECT serial, (SELECT count(*) FROM runs) FROM state_info WHERE id = 1 FOR UPDATE",
};

pub(super) const SET_IDENTITY: &str = "UPDATE state_info SET lineage = $1, serial = $2, \
     currency = $3, provider = $4 WHERE id = 1";

pub(super) const INSERT_OBSERVED_FEE: &str = "INSERT INTO observed_fees (product_code, charge, \
     observed_at, idempotency_key) VALUES ($1, $2, $3, $4)";

/// What the state's money is charged in, once a run has learned it.
pub(super) const SET_CURRENCY: &str = "UPDATE state_info SET currency = $1 WHERE id = 1";

/// The provider the state belongs to, once recorded.
pub(super) const SET_PROVIDER: &str = "UPDATE state_info SET provider = $1 WHERE id = 1";

pub(super) const LINEAGE_SERIAL: &str = "SELECT lineage, serial FROM state_info WHERE id = 1";

pub(super) const OBSERVED_FEES: &str = "SELECT product_code, charge FROM observed_fees";

// Reads outside the snapshot (`reads.rs`), on a connection of the backend's read pool.

/// The state's identity row: lineage, serial, currency, provider.
pub(super) const STATE_INFO: &str =
    "SELECT lineage, serial, currency, provider FROM state_info WHERE id = 1";

/// Every run, oldest first: serial, at, finished at, actor, host, command, summary.
pub(super) const RUNS: &str =
    "SELECT serial, at, finished_at, actor, host, command, summary FROM runs ORDER BY serial";

/// `(sent_serial, terms)`: each run's charged orders as `order_cost_terms!`, space-separated.
pub(super) const RUN_CHARGES: Dialects = Dialects {
    sqlite: concat!(
        "SELECT sent_serial, group_concat(",
        order_cost_terms!(),
        ", ' ') FROM orders WHERE charge IS NOT NULL GROUP BY sent_serial"
    ),
    postgres: concat!(
        "SELECT sent_serial, string_agg(",
        order_cost_terms!(),
        ", ' ') FROM orders WHERE charge IS NOT NULL GROUP BY sent_serial"
    ),
};

/// Which resources each run after `$1` changed: `(kind, key, serial)`, oldest run first.
pub(super) const CHANGES_SINCE: &str = "SELECT resource_kind, resource_key, serial FROM changes \
     WHERE serial > $1 ORDER BY serial, resource_kind, resource_key";

/// The card phases of a card that may exist at the provider, and be charged or used: deleting
/// the state that records it would leave it there unmanaged.
macro_rules! live_phases {
    () => {
        "('pending', 'active', 'frozen')"
    };
}

/// A named state's summary (see `named::StateSummary`) in schema `$q` (empty: the connection's
/// own): serial, cards, live cards, when the last run began.
macro_rules! summary_in {
    ($q:literal) => {
        concat!(
            "SELECT (SELECT serial FROM ",
            $q,
            "state_info WHERE id = 1), (SELECT count(*) FROM ",
            $q,
            "cards), (SELECT count(*) FROM ",
            $q,
            "cards WHERE phase IN ",
            live_phases!(),
            "), (SELECT at FROM ",
            $q,
            "runs ORDER BY serial DESC LIMIT 1)"
        )
    };
}

/// This state's summary: the same on both backends (their tables are alike).
pub(super) const SUMMARY: &str = summary_in!("");

/// The summary of another named state in the same PostgreSQL database, in schema `{schema}`
/// (`cardform_` and a name checked to be `[a-z0-9_]`: safe to interpolate).
pub(super) fn summary_of_schema(schema: &str) -> String {
    summary_in!("{schema}.").replace("{schema}", schema)
}

/// The latest image up to run `$1` of every record of `$kind_is` (`= 'card'`, `<> 'card'`),
/// aggregated by `$agg` into one JSON text: a seek on the change log's primary key per record.
macro_rules! images_at {
    ($agg:literal, $kind_is:literal) => {
        concat!(
            "SELECT ",
            $agg,
            " FROM changes AS c WHERE c.resource_kind ",
            $kind_is,
            " AND c.image IS NOT NULL \
               AND c.serial = (SELECT max(l.serial) FROM changes AS l \
                               WHERE l.resource_kind = c.resource_kind \
                                 AND l.resource_key = c.resource_key AND l.serial <= $1)"
        )
    };
}

/// The managed cards after run `$1`: one JSON object of images by key
/// (`codec::cards_from_images`), handed over whole as the snapshot's cards are.
pub(super) const CARDS_AT: Dialects = Dialects {
    sqlite: images_at!(
        "json_group_object(c.resource_key, json(c.image))",
        "= 'card'"
    ),
    postgres: images_at!(
        "coalesce(json_object_agg(c.resource_key, c.image::json), '{}')::text",
        "= 'card'"
    ),
};

/// The records of resources that are not cards after run `$1`: one JSON array of images
/// (`codec::resources_from_changes`).
pub(super) const RESOURCES_AT: Dialects = Dialects {
    sqlite: images_at!("json_group_array(json(c.image))", "<> 'card'"),
    postgres: images_at!("coalesce(json_agg(c.image::json), '[]')::text", "<> 'card'"),
};

// Filters of the journal's and the resources' reads (`Tx::orders_where`, `Tx::resources_where`):
// a condition both dialects read (or a `Dialects` pair), binds `$1`.. in order, all text. Each
// backend wraps it in its own select (columns on SQLite, packed JSON on PostgreSQL) and its
// order: journal order for orders, address order for resources.

/// The journal entry under idempotency key `$1`.
pub(super) const ORDER_BY_KEY: &str = "idempotency_key = $1";

/// The rows of one resource: kind `$1`, key `$2` (the orders of a resource, or its record).
pub(super) const OF_ADDRESS: &str = "resource_kind = $1 AND resource_key = $2";

/// The rows of a card's top-ups: keys in the range `$1`..`$2` (see `codec::topup_key_range`).
pub(super) const OF_TOPUPS: &str =
    "resource_kind = 'topup' AND resource_key >= $1 AND resource_key < $2";

/// The orders of card `$1` and of its top-ups (keys `$2`..`$3`): what its `charged` is from.
pub(super) const CARD_ORDERS: &str = "(resource_kind = 'card' AND resource_key = $1) \
     OR (resource_kind = 'topup' AND resource_key >= $2 AND resource_key < $3)";

/// Orders not yet terminal, of resources state still manages. An order of a card removed with
/// `state rm` stays in the journal (its key is never reused) but is not tracked.
pub(super) const OPEN_ORDERS: &str = "phase IN ('prepared', 'open') \
     AND (resource_kind <> 'card' \
          OR EXISTS (SELECT 1 FROM cards WHERE cards.key = orders.resource_key))";

/// The card orders under the keys that left state (see `REMOVED_CARD_KEYS`).
pub(super) const REMOVED_CARD_ORDERS: Dialects = Dialects {
    sqlite: concat!(
        "resource_kind = 'card' AND resource_key IN (",
        removed_card_keys!("INDEXED BY changes_tombstones"),
        ")"
    ),
    postgres: concat!(
        "resource_kind = 'card' AND resource_key IN (",
        removed_card_keys!(""),
        ")"
    ),
};

/// The records of kind `$1`.
pub(super) const OF_KIND: &str = "resource_kind = $1";

/// Every record.
pub(super) const EVERY: &str = "1 = 1";

// Approvals (`approvals.rs`): plans that wait for someone to approve them. The same texts on
// both backends.

/// Every approval, oldest first: id, status, created, updated, digest, summary, reasons, approved
/// by, approved at, approved under serial, applied under serial.
pub(super) const APPROVALS: &str = "SELECT id, status, created_at, updated_at, digest, summary, \
       reasons, approved_by, approved_at, approved_serial, applied_serial FROM approvals \
     ORDER BY id";

/// A new pending approval: created (and updated) at, digest, summary, reasons; its id back.
pub(super) const INSERT_APPROVAL: &str = "INSERT INTO approvals (status, created_at, updated_at, \
       digest, summary, reasons) VALUES ('pending', $1, $2, $3, $4, $5) RETURNING id";

/// Every approval still open (pending or approved) but `$2` marked superseded at `$1`.
pub(super) const SUPERSEDE_OPEN: &str = "UPDATE approvals SET status = 'superseded', \
       updated_at = $1 WHERE status IN ('pending', 'approved') AND id <> $2";

/// Approval `$5`, if still pending, approved by `$1` at `$2` (and `$4`) under serial `$3`.
pub(super) const APPROVE: &str = "UPDATE approvals SET status = 'approved', approved_by = $1, \
       approved_at = $2, approved_serial = $3, updated_at = $4 \
     WHERE id = $5 AND status = 'pending'";

/// Approval `$3`, if approved, applied by run `$2` at `$1`.
pub(super) const MARK_APPLIED: &str = "UPDATE approvals SET status = 'applied', updated_at = $1, \
       applied_serial = $2 WHERE id = $3 AND status = 'approved'";

/// A pending approval's reasons brought up to date (`$1` at, `$2` reasons, `$3` id).
pub(super) const UPDATE_REASONS: &str =
    "UPDATE approvals SET reasons = $2, updated_at = $1 WHERE id = $3 AND status = 'pending'";

/// An approval as a dump holds it, under its own id (`$1`), for `state migrate`: id, status,
/// created, updated, digest, summary, reasons, approved by, approved at, approved under serial,
/// applied under serial. PostgreSQL generates the id itself unless told otherwise.
pub(super) const INSERT_APPROVAL_AS: Dialects = Dialects {
    sqlite: "INSERT INTO approvals (id, status, created_at, updated_at, digest, summary, \
       reasons, approved_by, approved_at, approved_serial, applied_serial) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    postgres: "INSERT INTO approvals (id, status, created_at, updated_at, digest, summary, \
       reasons, approved_by, approved_at, approved_serial, applied_serial) \
     OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
};

/// After approvals were loaded under their own ids: the next one recorded gets a new id (SQLite's
/// AUTOINCREMENT keeps up by itself; PostgreSQL's identity sequence does not).
pub(super) const SYNC_APPROVAL_IDS: Dialects = Dialects {
    sqlite: "SELECT 1",
    postgres: "SELECT setval(pg_get_serial_sequence('approvals', 'id'), \
       coalesce(max(id), 0) + 1, false) FROM approvals",
};
