//! Planner tests: examples of each action and the property "apply the plan, plan again: nothing to do".

use super::*;
use crate::decl::{DesiredCard, DesiredStatus, Labels, Origin};
use crate::model::Address;
use crate::state::{CardPhase, CardRecord, OrderKind, OrderPhase, OrderRecord};
use crate::wire::Product;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn product(code: &str, fee: Option<&str>, active: bool) -> Product {
    Product {
        product_code: code.into(),
        name: code.into(),
        currency: "usd".into(),
        issue_fee: fee.map(d),
        topup_fee_percent: fee.map(|_| d("1.5")),
        topup_fee_fixed: fee.map(|_| d("0.30")),
        min_topup: Some(d("10")),
        max_topup: Some(d("5000")),
        is_active: active,
        ..Default::default()
    }
}

fn facts() -> ProviderFacts {
    let at = |mut p: Product, sub: &str| {
        p.subprovider_code = Some(sub.into());
        p
    };
    ProviderFacts {
        products: [
            at(product("STD", Some("5.00"), true), "SP"),
            at(product("PREM", Some("15.00"), true), "SP"),
            at(product("NOFEE", None, true), "SP2"),
            product("OLD", Some("1.00"), false),
        ]
        .into_iter()
        .map(|p| (p.product_code.clone(), p))
        .collect(),
        balance: Some(d("10000")),
        currency: "usdt".into(),
    }
}

fn card(key: &str, product: &str) -> DesiredCard {
    DesiredCard {
        key: key.into(),
        external_user_id: format!("u-{key}").into(),
        product_code: product.into(),
        initial_topup: None,
        status: DesiredStatus::Active,
        labels: Labels::new(),
        topups: Vec::new(),
        origin: Origin::default(),
    }
}

fn record_from(c: &DesiredCard, phase: CardPhase) -> CardRecord {
    CardRecord {
        key: c.key.clone(),
        external_user_id: c.external_user_id.clone(),
        product_code: c.product_code.clone(),
        initial_topup: c.initial_topup,
        desired_status: c.status,
        labels: c.labels.clone(),
        card_id: Some(compact_str::format_compact!("card-{}", c.key)),
        phase,
        provider_status: None,
        last4: Some("4242".into()),
        charged: Decimal::ZERO,
        attempt: 1,
        replaced_by: None,
        balance: None,
        created_at: Default::default(),
        updated_at: Default::default(),
    }
}

fn snapshot(records: Vec<CardRecord>) -> Snapshot {
    Snapshot {
        cards: records.into_iter().map(|r| (r.key.clone(), r)).collect(),
        ..Default::default()
    }
}

#[test]
fn issue_with_pricing_and_topup() {
    let mut c = card("a", "STD");
    c.initial_topup = Some(d("50"));
    let p = plan(
        &[c],
        &Snapshot::default(),
        &facts(),
        &PlanOptions::default(),
    );
    assert_eq!(p.actions.len(), 1);
    let a = &p.actions[0];
    assert_eq!(a.kind(), ActionKind::Issue);
    // fee = 5 + 50*1.5% + 0.30 = 6.05; top-up 50
    assert_eq!(a.estimate.fee, Some(d("6.05")));
    assert_eq!(a.estimate.topup, d("50"));
    assert_eq!(p.totals.charge, d("56.05"));
    assert_eq!(p.totals.balance_after, Some(d("9943.95")));
    assert!(p.is_applicable());
}

#[test]
fn unknown_fee_is_unknown_not_zero_then_observed() {
    let c = card("a", "NOFEE");
    let p = plan(
        std::slice::from_ref(&c),
        &Snapshot::default(),
        &facts(),
        &PlanOptions::default(),
    );
    assert_eq!(p.actions[0].estimate.source, EstimateSource::Unknown);
    assert_eq!(p.actions[0].estimate.fee, None);
    assert_eq!(p.totals.unknown_fees, 1);
    assert_eq!(p.totals.fees, Decimal::ZERO);

    let mut s = Snapshot::default();
    s.observed_issue_fees.insert("NOFEE".into(), d("3.00"));
    let p = plan(&[c], &s, &facts(), &PlanOptions::default());
    assert_eq!(p.actions[0].estimate.source, EstimateSource::Observed);
    assert_eq!(p.totals.fees, d("3.00"));
}

#[test]
fn problems_name_the_cards() {
    let mut low = card("low", "STD");
    low.initial_topup = Some(d("1"));
    let cards = vec![card("x", "NOPE"), card("y", "OLD"), low];
    let p = plan(
        &cards,
        &Snapshot::default(),
        &facts(),
        &PlanOptions::default(),
    );
    let msgs: Vec<String> = p.problems.iter().map(Problem::message).collect();
    assert!(
        msgs.iter().any(|m| m.contains("NOPE") && m.contains("x")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("OLD") && m.contains("not active")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with("low: initial_topup 1")),
        "{msgs:?}"
    );
}

#[test]
fn balance_and_budget() {
    let mut f = facts();
    f.balance = Some(d("7"));
    let cards = vec![card("a", "STD"), card("b", "STD")];
    let p = plan(&cards, &Snapshot::default(), &f, &PlanOptions::default());
    assert!(p.problems.contains(&Problem::InsufficientBalance {
        needed: d("10.00"),
        balance: d("7"),
        missing: d("3.00")
    }));
    let opts = PlanOptions {
        max_fees: Some(d("9.99")),
        ..Default::default()
    };
    let p = plan(&cards, &Snapshot::default(), &facts(), &opts);
    assert!(matches!(p.problems[..], [Problem::FeesOverBudget { .. }]));
}

#[test]
fn status_labels_replace_and_undeclared() {
    let a = card("a", "STD");
    let mut frozen = a.clone();
    frozen.status = DesiredStatus::Frozen;
    let mut relabel = card("b", "STD");
    let state = snapshot(vec![
        record_from(&a, CardPhase::Active),
        record_from(&relabel, CardPhase::Active),
        record_from(&card("c", "STD"), CardPhase::Active),
        record_from(&card("gone", "STD"), CardPhase::Active),
    ]);
    relabel.labels.insert("team".into(), "ops".into());
    let replaced = card("c", "PREM");
    let p = plan(
        &[frozen, relabel, replaced],
        &state,
        &facts(),
        &PlanOptions::default(),
    );
    let kinds: Vec<_> = p
        .actions
        .iter()
        .map(|a| (a.key.as_str(), a.kind()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("a", ActionKind::Freeze),
            ("b", ActionKind::UpdateLabels),
            ("c", ActionKind::Replace),
            ("gone", ActionKind::Undeclared),
        ]
    );
    assert_eq!(p.actions[2].estimate.fee, Some(d("15.00")));
    assert_eq!(p.totals.changes(), 3);

    let pruned = plan(
        &[],
        &snapshot(vec![record_from(&card("gone", "STD"), CardPhase::Active)]),
        &facts(),
        &PlanOptions {
            prune: true,
            ..Default::default()
        },
    );
    assert_eq!(pruned.actions[0].kind(), ActionKind::Prune);
}

#[test]
fn open_orders_are_resumed_even_when_undeclared() {
    let mut s = Snapshot::default();
    s.open_orders.insert(
        crate::model::Address::card("z"),
        vec![OrderRecord {
            idempotency_key: "k".into(),
            address: crate::model::Address::card("z"),
            kind: OrderKind::Issue,
            attempt: 1,
            request: "{}".into(),
            order_id: Some("o-1".into()),
            phase: OrderPhase::Open,
            provider_status: None,
            sub_status: None,
            error_slug: None,
            error_message: None,
            estimated_charge: Some(d("5")),
            charge: Some(d("5")),
            refunded: None,
            created_at: String::new(),
            updated_at: String::new(),
            sent_serial: None,
        }],
    );
    let p = plan(&[], &s, &facts(), &PlanOptions::default());
    assert_eq!(p.actions[0].kind(), ActionKind::Resume);
    assert_eq!(
        p.totals.charge,
        Decimal::ZERO,
        "an acknowledged order is paid already"
    );
    let p = plan(&[card("z", "STD")], &s, &facts(), &PlanOptions::default());
    assert_eq!(p.actions[0].kind(), ActionKind::Resume);
}

#[test]
fn failed_and_closed_cards_are_reissued_with_next_attempt() {
    let c = card("a", "STD");
    for phase in [CardPhase::Failed, CardPhase::Closed] {
        let mut r = record_from(&c, phase);
        r.attempt = 2;
        let p = plan(
            std::slice::from_ref(&c),
            &snapshot(vec![r]),
            &facts(),
            &PlanOptions::default(),
        );
        assert_eq!(p.actions[0].kind(), ActionKind::Reissue);
        assert_eq!(p.actions[0].attempt, 3);
    }
}

#[test]
fn retired_cards_are_frozen_once_their_replacement_exists() {
    let new = card("a", "PREM");
    let mut old = record_from(&card("a", "STD"), CardPhase::Active);
    old.key = "a~1".into();
    old.replaced_by = Some("a".into());
    let mut pending = record_from(&new, CardPhase::Pending);
    pending.attempt = 2;
    let p = plan(
        std::slice::from_ref(&new),
        &snapshot(vec![old.clone(), pending]),
        &facts(),
        &PlanOptions::default(),
    );
    assert!(
        p.actions.iter().all(|a| a.key != "a~1"),
        "not before the new card exists"
    );
    let issued = record_from(&new, CardPhase::Active);
    let p = plan(
        &[new],
        &snapshot(vec![old, issued]),
        &facts(),
        &PlanOptions::default(),
    );
    assert_eq!(p.actions.len(), 1);
    assert_eq!(
        (p.actions[0].key.as_str(), p.actions[0].kind()),
        ("a~1", ActionKind::Freeze)
    );
}

/// The record state keeps of the user or cardholder at `address` after an order of `attempt`
/// ended in `phase`, the KYC fields as `person` declared them.
fn person_record(
    address: Address,
    attempt: u32,
    phase: OrderPhase,
    person: Option<&Person>,
) -> crate::state::ResourceRecord {
    use crate::state::{CardholderRecord, ResourceImage, ResourceRecord, UserRecord};
    let uid = address.person().unwrap().to_owned();
    let error_slug = (phase == OrderPhase::Failed).then(|| "invalid_request".to_owned());
    let image = match address.subprovider() {
        None => ResourceImage::User(UserRecord {
            external_user_id: uid,
            user_id: Some("usr".into()),
            labels: Labels::new(),
            attempt,
            phase,
            error_slug,
        }),
        Some(sub) => ResourceImage::Cardholder(CardholderRecord {
            external_user_id: uid,
            subprovider: sub.into(),
            cardholder_id: Some("ch".into()),
            registration_status: Some("active".into()),
            kyc_status: Some("approved".into()),
            kyc: person.map(|p| p.journal_fields.clone()).unwrap_or_default(),
            labels: Labels::new(),
            attempt,
            phase,
            error_slug,
        }),
    };
    ResourceRecord {
        address,
        image,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// What a successful apply records for each action: the model exec must follow.
fn apply_effects(p: &Plan, state: &Snapshot, people: &[Person]) -> Snapshot {
    let mut next = state.clone();
    next.open_orders.clear();
    for a in &p.actions {
        if matches!(
            a.kind(),
            ActionKind::CreateUser | ActionKind::CreateCardholder
        ) {
            let declared = people
                .iter()
                .find(|x| Some(x.external_user_id.as_str()) == a.address().person());
            next.resources.insert(
                a.address(),
                person_record(a.address(), a.attempt, OrderPhase::Completed, declared),
            );
            continue;
        }
        if a.resource() == ResourceKind::Topup && a.kind() == ActionKind::UpdateLabels {
            let r = next
                .resources
                .get_mut(&a.address())
                .expect("a record to relabel");
            *r.image.labels_mut() = a.labels().clone();
            continue;
        }
        if a.kind() == ActionKind::Topup {
            let address = a.address();
            next.resources.insert(
                address.clone(),
                crate::state::ResourceRecord {
                    image: crate::state::ResourceImage::Topup(crate::state::TopupRecord {
                        card: address.card_key().unwrap().into(),
                        id: address.topup_id().unwrap().into(),
                        amount: a.amount().unwrap(),
                        labels: a.labels().clone(),
                        attempt: a.attempt,
                        phase: OrderPhase::Completed,
                        charge: a.estimate.total(),
                        error_slug: None,
                    }),
                    address,
                    created_at: String::new(),
                    updated_at: String::new(),
                },
            );
            next.topups.insert(
                a.key.to_string(),
                crate::state::TopupState {
                    attempt: a.attempt,
                    phase: OrderPhase::Completed,
                    amount: a.amount(),
                    charge: a.estimate.total(),
                    error_slug: None,
                },
            );
            continue;
        }
        let Some(after) = a.after() else { continue };
        let phase = match after.status {
            DesiredStatus::Active => CardPhase::Active,
            DesiredStatus::Frozen => CardPhase::Frozen,
        };
        if a.kind() == ActionKind::Replace
            && let Some(mut old) = next.cards.remove(a.key.as_str())
        {
            old.replaced_by = Some(a.key.clone());
            old.phase = CardPhase::Frozen;
            old.key = compact_str::format_compact!("{}~{}", a.key, old.attempt);
            next.cards.insert(old.key.clone(), old);
        }
        let existing = next.cards.get(a.key.as_str()).cloned();
        let mut r = existing.unwrap_or_else(|| CardRecord {
            key: a.key.clone(),
            external_user_id: Default::default(),
            product_code: Default::default(),
            initial_topup: None,
            desired_status: after.status,
            labels: Labels::new(),
            card_id: None,
            phase,
            provider_status: None,
            last4: None,
            charged: Decimal::ZERO,
            attempt: a.attempt,
            replaced_by: None,
            balance: None,
            created_at: Default::default(),
            updated_at: Default::default(),
        });
        r.external_user_id = after.external_user_id.clone();
        r.product_code = after.product_code.clone();
        r.initial_topup = after.initial_topup;
        r.labels = after.labels.clone();
        r.desired_status = after.status;
        r.phase = phase;
        r.attempt = a.attempt;
        r.card_id = Some(compact_str::format_compact!("card-{}-{}", a.key, a.attempt));
        next.cards.insert(a.key.clone(), r);
    }
    next
}

fn arb_card() -> impl Strategy<Value = DesiredCard> {
    (
        "[a-e]{1,2}",
        "u[0-3]",
        prop::sample::select(vec!["STD", "PREM", "NOFEE"]),
        prop::option::of(10u32..200),
        any::<bool>(),
        prop::collection::btree_map("[xy]", "[pq]", 0..2).prop_map(Labels::from),
        prop::collection::btree_map("[a-c]", 10u32..200, 0..3),
    )
        .prop_map(
            |(key, user, product, topup, frozen, labels, topups)| DesiredCard {
                key: key.into(),
                external_user_id: user.into(),
                product_code: product.into(),
                initial_topup: topup.map(Decimal::from),
                status: if frozen {
                    DesiredStatus::Frozen
                } else {
                    DesiredStatus::Active
                },
                labels,
                topups: topups
                    .into_iter()
                    .map(|(id, amount)| crate::decl::DesiredTopup {
                        id,
                        amount: Decimal::from(amount),
                        labels: Labels::from([("run".to_owned(), format!("r{}", amount % 2))]),
                        origin: Origin::default(),
                    })
                    .collect(),
                origin: Origin::default(),
            },
        )
}

fn arb_phase() -> impl Strategy<Value = CardPhase> {
    prop::sample::select(vec![
        CardPhase::Active,
        CardPhase::Frozen,
        CardPhase::Failed,
        CardPhase::Closed,
    ])
}

proptest! {
    #[test]
    fn apply_then_plan_again_has_nothing_to_do(
        desired in prop::collection::btree_map("[a-e]{1,2}", arb_card(), 0..12),
        existing in prop::collection::vec((arb_card(), arb_phase()), 0..12),
        prune in any::<bool>(),
        declared_people in prop::collection::btree_set("u[0-4]", 0..4),
    ) {
        let desired: Vec<DesiredCard> = desired
            .into_iter()
            .map(|(k, mut c)| { c.key = k.into(); c })
            .collect();
        let state = snapshot(existing.iter().map(|(c, ph)| record_from(c, *ph)).collect());
        let opts = PlanOptions { prune, ..Default::default() };
        let people: Vec<Person> = declared_people.iter().map(|u| person(u, "a@x.io")).collect();
        let first = plan_all(&desired, &[], &people, &state, &facts(), &opts);
        // Every card issue of a declared person waits for what that person still needs.
        for a in first.actions.iter().filter(|a| a.kind().issues_card()) {
            let uid = &a.after().unwrap().external_user_id;
            if declared_people.contains(uid.as_str()) {
                prop_assert!(a.depends_on.contains(&Address::user(uid)), "{:?}", a);
            }
        }
        let applied = apply_effects(&first, &state, &people);
        let second = plan_all(&desired, &[], &people, &applied, &facts(), &opts);
        prop_assert!(!second.has_changes(), "second plan: {:?}", second.actions);
        prop_assert_eq!(second.unchanged, desired.len());
    }

    /// A key that left state, declared again: its card is taken back (no charge) only from an
    /// order that asked for what is declared now and did not fail, and charged as new only
    /// under an attempt the journal never sent; either way the next plan has nothing to do.
    #[test]
    fn a_removed_key_comes_back_without_reusing_a_key_it_should_not(
        declared in arb_card(),
        history in prop::collection::vec(
            (
                prop::sample::select(vec![
                    OrderPhase::Prepared,
                    OrderPhase::Completed,
                    OrderPhase::Failed,
                ]),
                any::<bool>(),
            ),
            0..4,
        ),
    ) {
        let mut declared = declared;
        declared.topups.clear();
        let request = |same: bool| {
            let product = if same { declared.product_code.as_str() } else { "OTHER" };
            let mut r = serde_json::json!({
                "product_code": product,
                "external_user_id": declared.external_user_id.as_str(),
            });
            if let Some(t) = declared.initial_topup {
                r["initial_topup_amount"] = t.to_string().into();
            }
            r.to_string()
        };
        let orders: Vec<OrderRecord> = history
            .iter()
            .enumerate()
            .map(|(i, (phase, same))| {
                let mut o = OrderRecord::prepared(
                    format!("k{i}"),
                    Address::card(declared.key.as_str()),
                    OrderKind::Issue,
                    i as u32 + 1,
                    request(*same),
                    None,
                    "",
                );
                o.phase = *phase;
                o.order_id = (*phase != OrderPhase::Prepared).then(|| format!("ord-{i}"));
                o
            })
            .collect();
        let mut state = Snapshot::default();
        state.removed_cards.insert(declared.key.clone(), orders.clone());
        let desired = std::slice::from_ref(&declared);
        let first = plan(desired, &state, &facts(), &PlanOptions::default());
        let issue = first.actions.iter().find(|a| a.kind() == ActionKind::Issue).unwrap();
        let new = plan(
            desired,
            &Snapshot::default(),
            &facts(),
            &PlanOptions::default(),
        );
        match orders.iter().find(|o| o.attempt == issue.attempt) {
            Some(o) => {
                prop_assert!(o.phase != OrderPhase::Failed, "{:?}", issue);
                prop_assert_eq!(&o.request, &request(true));
                let charge = if o.order_id.is_some() {
                    Decimal::ZERO
                } else {
                    new.totals.charge
                };
                prop_assert_eq!(first.totals.charge, charge);
            }
            None => {
                prop_assert_eq!(issue.attempt as usize, orders.len() + 1);
                prop_assert_eq!(first.totals.charge, new.totals.charge);
            }
        }
        let applied = apply_effects(&first, &state, &[]);
        let second = plan(desired, &applied, &facts(), &PlanOptions::default());
        prop_assert!(!second.has_changes(), "second plan: {:?}", second.actions);
    }

    /// Planned a part at a time (each part of the declarations against its part of state), a
    /// fleet gets the actions of its whole plan, each once: what lets a very large apply run a
    /// part at a time.
    #[test]
    fn the_plans_of_the_parts_are_the_whole_plan(
        earlier in prop::collection::btree_map("[a-e]{1,2}", arb_card(), 0..12),
        desired in prop::collection::btree_map("[a-e]{1,2}", arb_card(), 0..12),
        existing in prop::collection::vec((arb_card(), arb_phase()), 0..12),
        prune in any::<bool>(),
        count in 1u32..5,
    ) {
        let keyed = |m: std::collections::BTreeMap<String, DesiredCard>| -> Vec<DesiredCard> {
            m.into_iter().map(|(k, mut c)| { c.key = k.into(); c }).collect()
        };
        let (earlier, desired) = (keyed(earlier), keyed(desired));
        let opts = PlanOptions { prune, ..Default::default() };
        // State with top-ups sent and cards in every phase, as an earlier run leaves it.
        let base = snapshot(existing.iter().map(|(c, ph)| record_from(c, *ph)).collect());
        let state = apply_effects(&plan(&earlier, &base, &facts(), &opts), &base, &[]);
        let whole = plan(&desired, &state, &facts(), &opts);
        let mut actions = Vec::new();
        let mut unchanged = 0;
        for part in crate::model::Part::all(count) {
            let mine: Vec<DesiredCard> =
                desired.iter().filter(|c| part.holds(&c.key)).cloned().collect();
            let p = plan(&mine, &state.part(part), &facts(), &opts);
            unchanged += p.unchanged;
            actions.extend(p.actions);
        }
        let order = |a: &Action, b: &Action| {
            (&a.key, a.kind().as_str(), a.attempt).cmp(&(&b.key, b.kind().as_str(), b.attempt))
        };
        let mut expected = whole.actions.clone();
        expected.sort_by(order);
        actions.sort_by(order);
        prop_assert_eq!(actions, expected);
        prop_assert_eq!(unchanged, whole.unchanged);
    }

    /// A plan folded part by part (`fold::Folding`) shows exactly what the whole plan made at
    /// once (one draft, folded) shows: the same text, totals, problems and warnings, without
    /// holding the actions.
    #[test]
    fn a_plan_folded_from_its_parts_reads_as_the_whole_plan(
        earlier in prop::collection::btree_map("[a-f]{1,2}", arb_card(), 0..20),
        desired in prop::collection::btree_map("[a-f]{1,2}", (arb_card(), 0usize..12), 0..40),
        existing in prop::collection::vec((arb_card(), arb_phase()), 0..12),
        prune in any::<bool>(),
        max_fees in prop::option::of(prop::sample::select(vec![50u32, 5000])),
        poor in any::<bool>(),
        count in 1u32..6,
    ) {
        let earlier: Vec<DesiredCard> =
            earlier.into_iter().map(|(k, mut c)| { c.key = k.into(); c }).collect();
        // Some cards of products the provider lacks or retired, some with outlandish top-ups.
        let desired: Vec<DesiredCard> = desired
            .into_iter()
            .map(|(k, (mut c, odd))| {
                c.key = k.into();
                match odd {
                    0 => c.product_code = "OLD".into(),
                    1 => c.product_code = "NOPE".into(),
                    2 => c.initial_topup = Some(d("9000")),
                    _ => {}
                }
                c
            })
            .collect();
        let mut facts = facts();
        if poor {
            facts.balance = Some(d("100"));
        }
        let opts = PlanOptions {
            prune,
            max_fees: max_fees.map(Decimal::from),
            max_prune: MaxPrune::Count(3),
            ..Default::default()
        };
        let base = snapshot(existing.iter().map(|(c, ph)| record_from(c, *ph)).collect());
        let state = apply_effects(&plan(&earlier, &base, &facts, &opts), &base, &[]);
        let doc = |p: Plan| {
            PlanDocument::new(
                p,
                StateRef::new("lineage", 1),
                DeclarationsRef { fingerprint: String::new(), files: Vec::new() },
                prune,
                &facts.currency,
                String::new(),
            )
        };
        let whole = plan(&desired, &state, &facts, &opts);
        let mut folding = Folding::new(&state);
        let mut outline = crate::plan::outline::Outline::default();
        for part in crate::model::Part::all(count) {
            let mine: Vec<DesiredCard> =
                desired.iter().filter(|c| part.holds(&c.key)).cloned().collect();
            let actions = folding.add(draft(&mine, &[], &[], &state.part(part), &facts, &opts));
            actions.iter().for_each(|a| outline.add(a));
        }
        outline.finish();
        let folded = folding.finish(&facts, &opts);
        prop_assert_eq!(&folded.totals, &whole.totals);
        prop_assert_eq!(&folded.problems, &whole.problems);
        prop_assert_eq!(&folded.warnings, &whole.warnings);
        prop_assert_eq!(folded.unchanged, whole.unchanged);
        let style = crate::render::Style::PLAIN;
        let (folded, whole) = (doc(folded), doc(whole));
        prop_assert_eq!(folded.has_changes, whole.has_changes);
        prop_assert_eq!(folded.applicable, whole.applicable);
        prop_assert_eq!(
            crate::render::plan::human_outlined(&folded, &outline, style),
            crate::render::plan::human(&whole, style, false)
        );
    }

    #[test]
    fn totals_add_up(desired in prop::collection::btree_map("[a-z]{1,3}", arb_card(), 0..20)) {
        let desired: Vec<DesiredCard> = desired.into_iter().map(|(k, mut c)| { c.key = k.into(); c }).collect();
        let p = plan(&desired, &Snapshot::default(), &facts(), &PlanOptions::default());
        let fees: Decimal = p.actions.iter().filter_map(|a| a.estimate.fee).sum();
        let topups: Decimal = p.actions.iter().map(|a| a.estimate.topup).sum();
        prop_assert_eq!(p.totals.fees, fees);
        prop_assert_eq!(p.totals.charge, fees + topups);
        prop_assert_eq!(p.totals.unknown_fees, p.actions.iter().filter(|a| a.estimate.source == EstimateSource::Unknown).count());
    }
}

fn person(uid: &str, email: &str) -> Person {
    Person {
        external_user_id: uid.into(),
        shown: "A. S., US".into(),
        journal_fields: [
            ("first_name", "hmac-sha256:f"),
            ("email", &format!("hmac-sha256:{email}")),
            ("country_iso", "US"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        labels: Labels::new(),
    }
}

#[test]
fn people_come_before_the_cards_that_need_them() {
    let mut a = card("a", "STD");
    a.external_user_id = "u1".into();
    let mut b = card("b", "PREM");
    b.external_user_id = "u1".into();
    let mut c = card("c", "NOFEE");
    c.external_user_id = "u1".into();
    let other = card("z", "STD"); // u-z: not a declared person, so as before
    let people = [person("u1", "a@x.io")];
    let p = plan_all(
        &[a, b, c, other],
        &[],
        &people,
        &Snapshot::default(),
        &facts(),
        &PlanOptions::default(),
    );
    let kinds: Vec<(ActionKind, String)> = p
        .actions
        .iter()
        .map(|a| (a.kind(), a.address().to_string()))
        .collect();
    let user = Address::user("u1");
    let sp = Address::cardholder("u1", "SP");
    let sp2 = Address::cardholder("u1", "SP2");
    assert!(kinds.contains(&(ActionKind::CreateUser, user.to_string())));
    // One cardholder per subprovider the person's cards need: STD and PREM share SP.
    assert!(kinds.contains(&(ActionKind::CreateCardholder, sp.to_string())));
    assert!(kinds.contains(&(ActionKind::CreateCardholder, sp2.to_string())));
    assert_eq!(p.totals.counts[&ActionKind::CreateCardholder], 2);
    let get = |k: &str| p.actions.iter().find(|a| a.key == k).unwrap();
    assert_eq!(get("a").depends_on, vec![user.clone(), sp.clone()]);
    assert_eq!(get("b").depends_on, vec![user.clone(), sp.clone()]);
    assert_eq!(get("c").depends_on, vec![user.clone(), sp2.clone()]);
    assert!(get("z").depends_on.is_empty());
    let holder = p.actions.iter().find(|a| a.address() == sp).unwrap();
    assert_eq!(holder.depends_on, vec![user.clone()]);
    assert_eq!(holder.person(), Some("A. S., US"));
    // People are free: the money line is the cards'.
    assert_eq!(p.totals.fees, d("25.00"));
    // Nothing personal in the plan file: only initials and digests' absence.
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("hmac-sha256"), "{json}");
}

#[test]
fn people_without_a_card_get_a_user_and_a_warning_not_a_cardholder() {
    // u1 has a card (so a cardholder), u2 none, u3 none but a cardholder from an earlier card.
    let mut a = card("a", "STD");
    a.external_user_id = "u1".into();
    let people = [
        person("u1", "1@x.io"),
        person("u2", "2@x.io"),
        person("u3", "3@x.io"),
    ];
    let mut state = Snapshot::default();
    for address in [Address::user("u3"), Address::cardholder("u3", "SP")] {
        state.resources.insert(
            address.clone(),
            person_record(address, 1, OrderPhase::Completed, Some(&people[2])),
        );
    }
    let p = plan_all(
        &[a],
        &[],
        &people,
        &state,
        &facts(),
        &PlanOptions::default(),
    );
    let holders: Vec<String> = p
        .actions
        .iter()
        .filter(|a| a.kind() == ActionKind::CreateCardholder)
        .map(|a| a.key.to_string())
        .collect();
    assert_eq!(holders, [Address::cardholder("u1", "SP").key]);
    assert!(p.actions.iter().any(|a| a.address() == Address::user("u2")));
    assert_eq!(
        p.warnings,
        vec![Warning::NoCardholderYet {
            external_user_ids: vec!["u2".into()],
            count: 1,
        }]
    );
    assert!(
        p.warnings[0]
            .message()
            .starts_with("u2 is declared without a card: only its user is created")
    );
    assert!(p.is_applicable());
}

#[test]
fn a_sent_cardholder_is_compared_by_digest_and_never_edited() {
    let mut a = card("a", "STD");
    a.external_user_id = "u1".into();
    let sent = person("u1", "old@x.io");
    let mut state = Snapshot::default();
    for address in [Address::user("u1"), Address::cardholder("u1", "SP")] {
        state.resources.insert(
            address.clone(),
            person_record(address, 1, OrderPhase::Completed, Some(&sent)),
        );
    }
    let now = [person("u1", "new@x.io")];
    let p = plan_all(&[a], &[], &now, &state, &facts(), &PlanOptions::default());
    assert!(
        p.actions.iter().all(|a| a.resource().is_card()),
        "{:?}",
        p.actions
    );
    assert_eq!(
        p.warnings,
        vec![Warning::KycDrift {
            external_user_id: "u1".into(),
            subprovider: "SP".into(),
            fields: vec!["email".into()],
        }]
    );
    assert!(p.is_applicable());
}

#[test]
fn a_refused_person_is_sent_again_under_the_next_attempt_and_an_unknown_one_under_its_own() {
    let mut a = card("a", "STD");
    a.external_user_id = "u1".into();
    let mut state = Snapshot::default();
    for (address, phase) in [
        (Address::user("u1"), OrderPhase::Failed),
        (Address::cardholder("u1", "SP"), OrderPhase::Prepared),
    ] {
        state
            .resources
            .insert(address.clone(), person_record(address, 2, phase, None));
    }
    let p = plan_all(
        &[a],
        &[],
        &[person("u1", "a@x.io")],
        &state,
        &facts(),
        &PlanOptions::default(),
    );
    let user = p
        .actions
        .iter()
        .find(|a| a.kind() == ActionKind::CreateUser)
        .unwrap();
    assert_eq!(user.attempt, 3);
    let holder = p
        .actions
        .iter()
        .find(|a| a.kind() == ActionKind::CreateCardholder)
        .unwrap();
    assert_eq!(holder.attempt, 2, "outcome unknown: the same key again");
}

#[test]
fn a_person_whose_product_names_no_subprovider_is_a_problem() {
    let mut facts = facts();
    facts.products.get_mut("STD").unwrap().subprovider_code = None;
    let mut a = card("a", "STD");
    a.external_user_id = "u1".into();
    let p = plan_all(
        &[a],
        &[],
        &[person("u1", "a@x.io")],
        &Snapshot::default(),
        &facts,
        &PlanOptions::default(),
    );
    assert_eq!(
        p.problems,
        vec![Problem::NoSubprovider {
            product_code: "STD".into(),
            external_user_id: "u1".into(),
        }]
    );
}

fn moved(from: &str, to: &str) -> crate::decl::Move {
    crate::decl::Move {
        from: from.into(),
        to: to.into(),
        origin: Origin::default(),
    }
}

#[test]
fn a_declared_move_renames_in_state_and_issues_nothing() {
    let old = card("bob-ops", "STD");
    let state = snapshot(vec![record_from(&old, CardPhase::Active)]);
    let mut new = old.clone();
    new.key = "bob-operations".into();
    new.labels.insert("team".into(), "ops".into());
    let moves = [moved("bob-ops", "bob-operations")];
    let p = plan_with_moves(
        std::slice::from_ref(&new),
        &moves,
        &state,
        &facts(),
        &PlanOptions::default(),
    );
    let kinds: Vec<(ActionKind, &str)> = p
        .actions
        .iter()
        .map(|a| (a.kind(), a.key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ActionKind::UpdateLabels, "bob-operations"),
            (ActionKind::Move, "bob-ops"),
        ]
    );
    assert_eq!(p.actions[1].moved_to(), Some("bob-operations"));
    assert_eq!(
        p.actions[0].depends_on,
        vec![crate::model::Address::card("bob-ops")],
        "relabelled only once moved"
    );
    assert_eq!(p.totals.fees, Decimal::ZERO);
    assert!(p.problems.is_empty() && p.warnings.is_empty(), "{p:?}");

    // Once moved, the same declarations plan nothing: the move stays harmless.
    let mut after = record_from(&new, CardPhase::Active);
    after.card_id = Some("card-bob-ops".into());
    let p = plan_with_moves(
        &[new],
        &moves,
        &snapshot(vec![after]),
        &facts(),
        &PlanOptions::default(),
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn a_move_that_cannot_apply_is_a_problem() {
    let a = card("a", "STD");
    let b = card("b", "STD");
    // Both keys in state.
    let state = snapshot(vec![
        record_from(&a, CardPhase::Active),
        record_from(&b, CardPhase::Active),
    ]);
    let p = plan_with_moves(
        std::slice::from_ref(&b),
        &[moved("a", "b")],
        &state,
        &facts(),
        &PlanOptions::default(),
    );
    assert!(
        matches!(&p.problems[..], [Problem::MoveConflict { from, to }] if from == "a" && to == "b"),
        "{:?}",
        p.problems
    );
    // An order of the old key still open.
    let mut state = snapshot(vec![record_from(&a, CardPhase::Frozen)]);
    let mut order = OrderRecord::prepared(
        "k".into(),
        crate::model::Address::card("a"),
        OrderKind::Unfreeze,
        1,
        "{}".into(),
        None,
        "",
    );
    order.phase = OrderPhase::Open;
    state
        .open_orders
        .insert(crate::model::Address::card("a"), vec![order]);
    let p = plan_with_moves(
        &[b],
        &[moved("a", "b")],
        &state,
        &facts(),
        &PlanOptions::default(),
    );
    assert!(
        p.problems
            .iter()
            .any(|p| matches!(p, Problem::MoveWaitsForOrders { from, .. } if from == "a")),
        "{:?}",
        p.problems
    );
    assert!(!p.actions.iter().any(|a| a.kind() == ActionKind::Move));
}

#[test]
fn a_target_keeps_what_its_changes_depend_on() {
    let old = card("bob-ops", "STD");
    let other = card("carol", "PREM");
    let state = snapshot(vec![record_from(&old, CardPhase::Active)]);
    let mut new = old.clone();
    new.key = "bob-operations".into();
    new.labels.insert("team".into(), "ops".into());
    let opts = PlanOptions {
        targets: vec![Target::parse("bob-operations").unwrap()],
        ..Default::default()
    };
    let p = plan_with_moves(
        &[new, other],
        &[moved("bob-ops", "bob-operations")],
        &state,
        &facts(),
        &opts,
    );
    let kinds: Vec<ActionKind> = p.actions.iter().map(|a| a.kind()).collect();
    assert_eq!(kinds, vec![ActionKind::UpdateLabels, ActionKind::Move]);
    let partial = p.partial.unwrap();
    assert_eq!(partial.left_out, 1, "carol's issue");
    assert!(partial.unmatched.is_empty());
    assert_eq!(
        p.totals.fees,
        Decimal::ZERO,
        "money of the targeted changes only"
    );
}

#[test]
fn a_card_target_takes_its_topups_along() {
    let mut alice = card("alice", "STD");
    alice.topups.push(crate::decl::DesiredTopup {
        id: "2026-11".into(),
        amount: d("100"),
        labels: Labels::new(),
        origin: Origin::default(),
    });
    let bob = card("bob", "STD");
    let state = snapshot(vec![
        record_from(&alice, CardPhase::Active),
        record_from(&bob, CardPhase::Active),
    ]);
    let mut bob_later = bob.clone();
    bob_later.labels.insert("team".into(), "x".into());
    let opts = PlanOptions {
        targets: vec![Target::parse("alice").unwrap()],
        ..Default::default()
    };
    let p = plan(&[alice, bob_later], &state, &facts(), &opts);
    let keys: Vec<&str> = p.actions.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["alice:2026-11"]);
    assert_eq!(p.partial.unwrap().left_out, 1, "bob's relabel");
}

#[test]
fn a_sent_topups_changed_labels_relabel_its_record_and_send_nothing() {
    let mut alice = card("alice", "STD");
    alice.topups.push(crate::decl::DesiredTopup {
        id: "2026-11".into(),
        amount: d("100"),
        labels: Labels::from([("run".to_owned(), "payroll".to_owned())]),
        origin: Origin::default(),
    });
    let fresh = snapshot(vec![record_from(&alice, CardPhase::Active)]);
    let first = plan(
        std::slice::from_ref(&alice),
        &fresh,
        &facts(),
        &PlanOptions::default(),
    );
    let sent = apply_effects(&first, &fresh, &[]);
    let again = plan(
        std::slice::from_ref(&alice),
        &sent,
        &facts(),
        &PlanOptions::default(),
    );
    assert!(
        again.actions.iter().all(|a| !a.kind().is_change()),
        "{again:#?}"
    );

    alice.topups[0].labels = Labels::from([("run".to_owned(), "bonus".to_owned())]);
    let p = plan(
        std::slice::from_ref(&alice),
        &sent,
        &facts(),
        &PlanOptions::default(),
    );
    let changes: Vec<(ResourceKind, &str, ActionKind)> = p
        .actions
        .iter()
        .filter(|a| a.kind().is_change())
        .map(|a| (a.resource(), a.key.as_str(), a.kind()))
        .collect();
    assert_eq!(
        changes,
        [(
            ResourceKind::Topup,
            "alice:2026-11",
            ActionKind::UpdateLabels
        )]
    );
    assert_eq!(p.actions[0].labels()["run"], "bonus");
    assert_eq!(p.totals.charge, Decimal::ZERO, "a relabel costs nothing");
    let relabelled = apply_effects(&p, &sent, &[]);
    let again = plan(&[alice], &relabelled, &facts(), &PlanOptions::default());
    assert!(again.actions.iter().all(|a| !a.kind().is_change()));
}

#[test]
fn a_declared_move_takes_the_cards_sent_topups_along() {
    let mut alice = card("alice", "STD");
    alice.topups.push(crate::decl::DesiredTopup {
        id: "2026-11".into(),
        amount: d("100"),
        labels: Labels::new(),
        origin: Origin::default(),
    });
    let fresh = snapshot(vec![record_from(&alice, CardPhase::Active)]);
    let sent = apply_effects(
        &plan(
            std::slice::from_ref(&alice),
            &fresh,
            &facts(),
            &PlanOptions::default(),
        ),
        &fresh,
        &[],
    );
    let mut renamed = alice.clone();
    renamed.key = "alice-x".into();
    let p = plan_with_moves(
        std::slice::from_ref(&renamed),
        &[moved("alice", "alice-x")],
        &sent,
        &facts(),
        &PlanOptions::default(),
    );
    let changes: Vec<(&str, ActionKind)> = p
        .actions
        .iter()
        .filter(|a| a.kind().is_change())
        .map(|a| (a.key.as_str(), a.kind()))
        .collect();
    assert_eq!(changes, [("alice", ActionKind::Move)], "{:#?}", p.actions);
    assert_eq!(p.totals.charge, Decimal::ZERO, "nothing is sent again");

    // While one of its top-ups is still open, the move waits.
    let mut open = sent.clone();
    let order = OrderRecord::prepared(
        "k".into(),
        crate::model::Address::topup("alice", "2026-11"),
        OrderKind::Topup,
        2,
        r#"{"amount":"100"}"#.into(),
        None,
        "t",
    );
    open.open_orders.insert(order.address.clone(), vec![order]);
    let p = plan_with_moves(
        &[renamed],
        &[moved("alice", "alice-x")],
        &open,
        &facts(),
        &PlanOptions::default(),
    );
    assert!(
        p.problems
            .iter()
            .any(|x| matches!(x, Problem::MoveWaitsForOrders { .. })),
        "{:#?}",
        p.problems
    );
}

/// The walk along sorted declarations and state finds what a lookup per card finds: the same
/// plan whatever order the cards are passed in.
#[test]
fn declaration_order_does_not_change_the_plan() {
    let mut declared: Vec<DesiredCard> = (0..40)
        .filter(|i| i % 5 != 0)
        .map(|i| card(&format!("k{i:02}"), "STD"))
        .collect();
    let mut records: Vec<CardRecord> = (0..40)
        .filter(|i| i % 3 != 0)
        .map(|i| {
            let phase = if i % 4 == 0 {
                CardPhase::Frozen
            } else {
                CardPhase::Active
            };
            record_from(&card(&format!("k{i:02}"), "STD"), phase)
        })
        .collect();
    records[2].labels.insert("team".into(), "x".into());
    let state = snapshot(records);
    let options = PlanOptions {
        prune: true,
        ..PlanOptions::default()
    };
    let sorted = plan(&declared, &state, &facts(), &options);
    declared.reverse();
    let reversed = plan(&declared, &state, &facts(), &options);
    assert_eq!(sorted, reversed);
    let kinds: std::collections::BTreeSet<_> = sorted.actions.iter().map(|a| a.kind()).collect();
    assert!(kinds.len() >= 3, "{kinds:?}");
}

#[test]
fn actions_read_back_from_a_plan_file_as_they_were_written() {
    let topup = Action {
        key: "a:t1".into(),
        reason: "declared, not sent yet".into(),
        product_code: "STD".into(),
        attempt: 1,
        estimate: Estimate::none(),
        depends_on: vec![Address::card("a")],
        change: Change::Topup(Box::new(TopupChange {
            card: Attributes {
                external_user_id: "u-1".into(),
                product_code: "STD".into(),
                initial_topup: None,
                status: DesiredStatus::Active,
                labels: Labels::new(),
            },
            amount: d("15.00"),
            labels: Labels::from_iter([("run".to_owned(), "payroll".to_owned())]),
        })),
    };
    let json = serde_json::to_value(&topup).unwrap();
    // Flat, as plan files always had them.
    assert_eq!(json["amount"], "15.00");
    assert_eq!(json["labels"]["run"], "payroll");
    assert_eq!(json["resource"], "topup");
    assert_eq!(json["after"]["external_user_id"], "u-1");
    assert!(
        json.get("change").is_none() && json.get("moved_to").is_none(),
        "{json}"
    );
    let back: Action = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, topup);
    // A kind without a field it needs, or on a resource no plan pairs it with, is refused by name.
    let mut no_amount = json.clone();
    no_amount.as_object_mut().unwrap().remove("amount");
    let e = serde_json::from_value::<Action>(no_amount).unwrap_err();
    assert!(
        e.to_string()
            .contains("a `topup` action of a topup needs `amount`"),
        "{e}"
    );
    let mut on_a_user = json;
    on_a_user["resource"] = "user".into();
    let e = serde_json::from_value::<Action>(on_a_user).unwrap_err();
    assert!(
        e.to_string().contains("is not a change cardform plans"),
        "{e}"
    );
}

/// A million actions are held at once: the per-kind payloads keep an action as small as the flat
/// action with its optional fields boxed was (168 bytes on 64-bit targets).
#[test]
fn an_action_is_no_larger_than_the_flat_one() {
    assert_eq!(std::mem::size_of::<Change>(), 24);
    assert!(
        std::mem::size_of::<Action>() <= 168,
        "{}",
        std::mem::size_of::<Action>()
    );
}

/// A key that left state and is declared again: its latest issue order is taken back when it
/// asked for what is declared now (no new charge once acknowledged); a failed one, or one that
/// asked for another product, gives a new card under the next attempt.
#[test]
fn a_removed_key_declared_again_takes_back_or_issues_anew() {
    let issued = |attempt: u32, product: &str, phase: OrderPhase| {
        let mut o = OrderRecord::prepared(
            format!("k{attempt}"),
            Address::card("a"),
            OrderKind::Issue,
            attempt,
            format!(r#"{{"product_code":"{product}","external_user_id":"u-a"}}"#),
            Some(d("5")),
            "",
        );
        o.order_id = (phase != OrderPhase::Prepared).then(|| format!("ord-{attempt}"));
        o.phase = phase;
        o
    };
    let planned = |orders: Vec<OrderRecord>, declared: &str| {
        let mut s = Snapshot::default();
        s.removed_cards.insert("a".into(), orders);
        let p = plan(
            &[card("a", declared)],
            &s,
            &facts(),
            &PlanOptions::default(),
        );
        let a = p.actions[0].clone();
        assert_eq!(a.kind(), ActionKind::Issue);
        (a.attempt, a.reason.to_string(), p.totals.charge)
    };

    // Removed with no issue order of its own (it moved, or was imported): a new card.
    let (attempt, reason, charge) = planned(Vec::new(), "STD");
    assert_eq!((attempt, charge), (1, d("5")));
    assert!(
        reason.contains("moved to another key, or was imported"),
        "{reason}"
    );

    let (attempt, reason, charge) = planned(
        vec![
            issued(1, "STD", OrderPhase::Failed),
            issued(2, "STD", OrderPhase::Completed),
        ],
        "STD",
    );
    assert_eq!((attempt, charge), (2, Decimal::ZERO), "{reason}");
    assert!(
        reason.contains("ord-2 is checked, not sent again"),
        "{reason}"
    );

    // Journaled but never acknowledged: the same order, which may still be charged when sent.
    let (attempt, _, charge) = planned(vec![issued(1, "STD", OrderPhase::Prepared)], "STD");
    assert_eq!((attempt, charge), (1, d("5")));

    let (attempt, reason, charge) = planned(vec![issued(1, "STD", OrderPhase::Failed)], "STD");
    assert_eq!((attempt, charge), (2, d("5")), "{reason}");
    assert!(reason.contains("(attempt 1) failed"), "{reason}");

    // Nothing is asked of the product of a card taken back: one no longer sold is no problem.
    let mut s = Snapshot::default();
    s.removed_cards
        .insert("a".into(), vec![issued(1, "OLD", OrderPhase::Completed)]);
    let p = plan(&[card("a", "OLD")], &s, &facts(), &PlanOptions::default());
    assert!(p.is_applicable(), "{:?}", p.problems);
    let mut s = Snapshot::default();
    s.removed_cards
        .insert("a".into(), vec![issued(1, "STD", OrderPhase::Completed)]);
    let p = plan(&[card("a", "OLD")], &s, &facts(), &PlanOptions::default());
    assert!(!p.is_applicable(), "a new card of a product no longer sold");

    let (attempt, reason, charge) = planned(vec![issued(3, "STD", OrderPhase::Completed)], "PREM");
    assert_eq!((attempt, charge), (4, d("15")), "{reason}");
    assert!(
        reason.contains("a new card; `cardform import a CARD_ID`"),
        "{reason}"
    );

    // A move onto a key with orders of its own, taken out of state, is refused.
    let mut s = snapshot(vec![record_from(&card("b", "STD"), CardPhase::Active)]);
    s.removed_cards
        .insert("a".into(), vec![issued(1, "STD", OrderPhase::Completed)]);
    let p = plan_with_moves(
        &[card("a", "STD")],
        &[moved("b", "a")],
        &s,
        &facts(),
        &PlanOptions::default(),
    );
    assert!(
        matches!(&p.problems[..], [Problem::MoveOntoUsedKey { from, to }] if from == "b" && to == "a"),
        "{:?}",
        p.problems
    );
}

/// A card issued anew does not get the top-ups its earlier card was sent, and the plan says so;
/// a card taken back is that same card, and nothing is said.
#[test]
fn a_new_card_is_told_its_earlier_cards_topups_stay_sent() {
    let mut declared = card("a", "PREM");
    declared.topups = vec![crate::decl::DesiredTopup {
        id: "t1".into(),
        amount: d("50"),
        labels: Labels::new(),
        origin: Origin::default(),
    }];
    let sent = crate::state::TopupState {
        attempt: 1,
        phase: OrderPhase::Completed,
        amount: Some(d("50")),
        charge: Some(d("51.05")),
        error_slug: None,
    };

    // Another product: the card is replaced.
    let mut state = snapshot(vec![record_from(&card("a", "STD"), CardPhase::Active)]);
    state.topups.insert("a:t1".into(), sent.clone());
    let p = plan(
        std::slice::from_ref(&declared),
        &state,
        &facts(),
        &PlanOptions::default(),
    );
    assert!(p.actions.iter().any(|a| a.kind() == ActionKind::Replace));
    assert!(!p.actions.iter().any(|a| a.kind() == ActionKind::Topup));
    let told: Vec<String> = p.warnings.iter().map(Warning::message).collect();
    assert!(
        told.iter().any(|w| w
            .starts_with("a is a new card in this plan; its top-up t1 went to its earlier card")),
        "{told:?}"
    );

    // Taken back after `state rm`: the same card, which has its top-up.
    let mut state = Snapshot::default();
    state.topups.insert("a:t1".into(), sent);
    let mut order = OrderRecord::prepared(
        "k".into(),
        Address::card("a"),
        OrderKind::Issue,
        1,
        r#"{"product_code":"PREM","external_user_id":"u-a"}"#.into(),
        None,
        "",
    );
    order.phase = OrderPhase::Completed;
    order.order_id = Some("ord".into());
    state.removed_cards.insert("a".into(), vec![order]);
    let p = plan(&[declared], &state, &facts(), &PlanOptions::default());
    assert_eq!(p.totals.charge, Decimal::ZERO);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn replace_asked_for_replaces_issued_cards_only() {
    let cards = [card("a", "STD"), card("f", "STD"), card("x", "STD")];
    let mut closed = record_from(&cards[2], CardPhase::Closed);
    closed.attempt = 3;
    let state = snapshot(vec![
        record_from(&cards[0], CardPhase::Active),
        record_from(&cards[1], CardPhase::Frozen),
        closed,
    ]);
    let options = PlanOptions {
        replace: ["a", "f", "x"].into_iter().map(String::from).collect(),
        ..PlanOptions::default()
    };
    let p = plan(&cards, &state, &facts(), &options);
    let kinds: Vec<_> = p
        .actions
        .iter()
        .map(|a| (a.key.as_str(), a.kind(), a.attempt))
        .collect();
    // A frozen card is replaced too (the new one takes the declared status); a closed one is
    // re-issued as it would be anyway: never two new cards.
    assert_eq!(
        kinds,
        vec![
            ("a", ActionKind::Replace, 2),
            ("f", ActionKind::Replace, 2),
            ("x", ActionKind::Reissue, 4),
        ]
    );
    assert_eq!(p.actions[0].estimate.fee, Some(d("5.00")));
    assert_eq!(p.totals.fees, d("15.00"));
    // Without it, the same state plans nothing for `a` and only unfreezes `f`.
    let p = plan(&cards, &state, &facts(), &PlanOptions::default());
    assert!(!p.actions.iter().any(|a| a.key == "a"));
    assert!(
        p.actions
            .iter()
            .any(|a| a.key == "f" && a.kind() == ActionKind::Unfreeze)
    );
}
