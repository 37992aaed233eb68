//! SQL text both backends share, written once: SQLite and PostgreSQL read it as it is (`$1`
//! placeholders aside, which none of these need). What a backend alone understands stays in the
//! backend; how the rows are read back is `codec`'s. Must not run queries.

/// The SQL both backends read [`super::codec::card_costs`]'s rows with.
pub(super) const CHARGED_ORDERS_SQL: &str = "SELECT resource_kind, resource_key, charge, refunded \
     FROM orders WHERE charge IS NOT NULL AND resource_kind IN ('card', 'topup')";

/// The condition both backends select [`super::Store::refunds_unknown`]'s orders by.
pub(super) const REFUND_UNKNOWN: &str = "phase = 'failed' AND charge IS NOT NULL \
     AND refunded IS NULL AND order_id IS NOT NULL";

/// One order's cost as the terms [`super::codec::attach_charges`] sums, in SQL both dialects read: its charge,
/// then its refund negated (see [`super::money::order_cost`]).
pub(super) const ORDER_COST_TERMS: &str = "charge || coalesce(' -' || refunded, '')";

/// The SQL both backends count each run's top-up orders with: `(sent_serial, count)`.
pub(super) const TOPUPS_SENT_SQL: &str = "SELECT sent_serial, count(*) FROM orders \
     WHERE kind = 'topup' GROUP BY sent_serial";

/// The keys that left state, by the change log's tombstones (an index of them: schema 6), that
/// no card record holds now. Both backends; SQLite is told the index, since its planner prefers
/// the primary key's `resource_kind` range (every card's change log, 0.3 s at a million cards)
/// even after `ANALYZE`.
pub(super) fn removed_card_keys_sql(sqlite: bool) -> &'static str {
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
    if sqlite {
        removed_card_keys!("INDEXED BY changes_tombstones")
    } else {
        removed_card_keys!("")
    }
}

/// The SQL both backends read top-ups with.
pub(super) const TOPUPS_SQL: &str = "SELECT resource_key, attempt, phase, request, charge, \
     error_slug, refunded FROM orders WHERE resource_kind = 'topup' ORDER BY seq";
