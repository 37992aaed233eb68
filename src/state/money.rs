//! The one money rule: what an order, and so a resource, cost. Every figure cardform reports
//! (the apply summary, `show`, `state list`, history, export, diff, audit) reads from here, so
//! they agree with each other and with the provider's balance to the cent. Pure functions of the
//! journal; must hold no SQL and must not decide what to send.
//!
//! An order costs what the provider took when it created it (`balance_before − balance_after`)
//! less what it gave back when the order failed (`refunded_amount`, possibly part of it). The
//! cost of a resource is the sum over its orders, each counted once: settling an order again
//! (a resumed run, a second runner, a refresh) rewrites the same journal entry and changes
//! nothing.

use rust_decimal::Decimal;

use super::model::{OrderPhase, OrderRecord};
use super::{CallRecord, ResourceImage};

/// The `result` of the audit row that records a refund (its `charge` is the negative amount).
pub const REFUND_RESULT: &str = "refunded";

/// The endpoint the audit row of a refund names: the refund is seen on the order's check.
pub const REFUND_ENDPOINT: &str = "orders/check";

/// What `order` cost: its charge less what was given back; `None` while nothing is known to
/// have been charged.
pub fn order_cost(order: &OrderRecord) -> Option<Decimal> {
    Some(cost(order.charge?, order.refunded))
}

/// The rule itself, for a charge and what was given back of it.
pub fn cost(charge: Decimal, refunded: Option<Decimal>) -> Decimal {
    charge - refunded.unwrap_or_default()
}

/// What the upgrade to schema 7 records as the run that recomputed the cards' figures.
pub const RECOMPUTE_COMMAND: &str =
    "cardform init --upgrade (schema 7: every card's charged recomputed from its orders)";

/// What the orders of a resource cost together (zero for none).
pub fn resource_cost<'a>(orders: impl IntoIterator<Item = &'a OrderRecord>) -> Decimal {
    orders.into_iter().filter_map(order_cost).sum()
}

/// Whether `order` says more about money given back than `before` (the same journal entry as it
/// was stored): the refund is then new, and earns one audit row of its own.
pub fn new_refund(before: Option<&OrderRecord>, order: &OrderRecord) -> Option<Decimal> {
    let refunded = order.refunded.filter(|r| !r.is_zero())?;
    if order.phase != OrderPhase::Failed {
        return None;
    }
    let known = before.and_then(|b| b.refunded).unwrap_or_default();
    (refunded != known).then_some(refunded - known)
}

/// The audit row of a refund of `amount` on `order`, seen at `at`: a negative charge, so the
/// audit nets to what the orders cost.
pub fn refund_call(order: &OrderRecord, amount: Decimal, at: &str) -> CallRecord {
    CallRecord {
        at: at.to_owned(),
        endpoint: REFUND_ENDPOINT.to_owned(),
        idempotency_key: Some(order.idempotency_key.clone()),
        order_id: order.order_id.clone(),
        address: Some(order.address.clone()),
        result: REFUND_RESULT.to_owned(),
        charge: Some(-amount),
    }
}

/// Sets what a top-up's record says it cost from all of its orders (every attempt), so the
/// record agrees with its card's total. Other kinds cost nothing and are left alone.
pub fn cost_into(image: &mut ResourceImage, orders: &[OrderRecord]) {
    if let ResourceImage::Topup(t) = image {
        t.charge = orders
            .iter()
            .any(|o| o.charge.is_some())
            .then(|| resource_cost(orders));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;
    use crate::state::OrderKind;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn order(phase: OrderPhase, charge: Option<&str>, refunded: Option<&str>) -> OrderRecord {
        let mut o = OrderRecord::prepared(
            "k".into(),
            Address::card("a"),
            OrderKind::Issue,
            1,
            "{}".into(),
            None,
            "2026-01-01T00:00:00Z",
        );
        o.phase = phase;
        o.charge = charge.map(d);
        o.refunded = refunded.map(d);
        o
    }

    #[test]
    fn an_order_costs_its_charge_less_its_refund() {
        assert_eq!(order_cost(&order(OrderPhase::Prepared, None, None)), None);
        let done = order(OrderPhase::Completed, Some("5.00"), None);
        assert_eq!(order_cost(&done), Some(d("5.00")));
        let full = order(OrderPhase::Failed, Some("5.00"), Some("5.00"));
        assert_eq!(order_cost(&full), Some(d("0.00")));
        let part = order(OrderPhase::Failed, Some("56.05"), Some("50.75"));
        assert_eq!(order_cost(&part), Some(d("5.30")));
        let kept = order(OrderPhase::Failed, Some("5.00"), Some("0"));
        assert_eq!(resource_cost([&done, &full, &part, &kept]), d("15.30"));
    }

    #[test]
    fn a_refund_is_audited_once() {
        let open = order(OrderPhase::Open, Some("5.00"), None);
        let failed = order(OrderPhase::Failed, Some("5.00"), Some("5.00"));
        assert_eq!(new_refund(Some(&open), &failed), Some(d("5.00")));
        assert_eq!(new_refund(None, &failed), Some(d("5.00")));
        // Settled again (a second runner, a refresh): nothing new.
        assert_eq!(new_refund(Some(&failed), &failed), None);
        let kept = order(OrderPhase::Failed, Some("5.00"), Some("0"));
        assert_eq!(new_refund(Some(&open), &kept), None);
        let call = refund_call(&failed, d("5.00"), "t");
        assert_eq!(call.charge, Some(d("-5.00")));
        assert_eq!(call.result, REFUND_RESULT);
    }
}
