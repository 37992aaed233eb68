use proptest::prelude::*;

use super::*;
use crate::model::ResourceKind;
use crate::plan::{ActionKind, Attributes, Change, Estimate, Renamed, Totals};

fn action(resource: ResourceKind, key: &str, kind: ActionKind) -> Action {
    Action {
        key: key.into(),
        reason: "r".into(),
        product_code: "STD".into(),
        attempt: 1,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change: Change::sample(kind, resource),
    }
}

fn attrs(user: &str) -> Box<Attributes> {
    Box::new(Attributes {
        external_user_id: user.into(),
        product_code: "STD".into(),
        initial_topup: None,
        status: Default::default(),
        labels: Default::default(),
    })
}

fn issue(key: &str, user: &str) -> Action {
    Action {
        change: Change::Issue { after: attrs(user) },
        ..action(ResourceKind::Card, key, ActionKind::Issue)
    }
}

fn plan(actions: Vec<Action>) -> Plan {
    Plan {
        actions,
        unchanged: 0,
        totals: Totals::default(),
        problems: Vec::new(),
        warnings: Vec::new(),
        partial: None,
    }
}

fn run(serial: u64) -> RunRecord {
    RunRecord {
        serial,
        at: "2026-12-08T00:00:00Z".into(),
        finished_at: None,
        user: "ci".into(),
        host: "runner".into(),
        command: format!("cardform apply plan-{serial}.json"),
        summary: serde_json::json!({}),
        charged: None,
        topups_sent: None,
    }
}

fn changed(serial: u64, address: Address) -> Changed {
    Changed { serial, address }
}

fn at(serial: u64) -> StateRef {
    StateRef::new("lin", serial)
}

#[test]
fn a_plan_touches_its_keys_both_sides_of_a_move_topup_cards_and_people() {
    let mut mv = action(ResourceKind::Card, "old", ActionKind::Move);
    mv.change = Change::Move(Box::new(Renamed {
        before: *attrs(""),
        to: "new".into(),
    }));
    let mut topup = action(ResourceKind::Topup, "funded:2026-11", ActionKind::Topup);
    topup.depends_on = vec![Address::card("funded")];
    let holder = action(
        ResourceKind::Cardholder,
        "u-9:SUB",
        ActionKind::CreateCardholder,
    );
    let undeclared = action(ResourceKind::Card, "listed", ActionKind::Undeclared);
    let f = Footprint::of(&plan(vec![
        issue("a", "u-1"),
        mv,
        topup,
        holder,
        undeclared,
    ]));
    for touched in [
        Address::card("a"),
        Address::card("a~1"),
        Address::topup("a", "x"),
        Address::card("old"),
        Address::card("new"),
        Address::card("funded"),
        Address::topup("funded", "other"),
        Address::user("u-1"),
        Address::cardholder("u-1", "S2"),
        Address::user("u-9"),
    ] {
        assert!(f.touches(&touched), "{touched}");
    }
    for untouched in [
        Address::card("b"),
        Address::card("listed"),
        Address::topup("ab", "a"),
        Address::user("u-2"),
    ] {
        assert!(!f.touches(&untouched), "{untouched}");
    }
}

#[test]
fn a_change_to_a_touched_card_names_it_and_its_run() {
    let f = Footprint::of(&plan(vec![issue("a", "u-1")]));
    let runs = [run(3), run(4), run(5)];
    let changes = [
        changed(4, Address::card("b")),
        changed(5, Address::card("a")),
    ];
    let Verdict::Stale(why) = judge(&at(3), 5, &f, &changes, &runs) else {
        panic!("stale");
    };
    assert!(why.contains("serial 3 then, 5 now"), "{why}");
    assert!(
        why.contains("serial 5: `cardform apply plan-5.json` by ci@runner"),
        "{why}"
    );
    assert!(why.contains("changed card a"), "{why}");
    assert!(!why.contains("card b"), "{why}");
}

#[test]
fn an_unreadable_history_refuses() {
    let f = Footprint::of(&plan(vec![issue("a", "u-1")]));
    let gap = judge(&at(3), 6, &f, &[], &[run(4), run(6)]);
    assert!(
        matches!(&gap, Verdict::Stale(w) if w.contains("no run for serial 5")),
        "{gap:?}"
    );
    let older = judge(&at(7), 6, &f, &[], &[run(4)]);
    assert!(
        matches!(&older, Verdict::Stale(w) if w.contains("older than the plan")),
        "{older:?}"
    );
    let odd = judge(&at(3), 4, &f, &[changed(9, Address::card("z"))], &[run(4)]);
    assert!(
        matches!(&odd, Verdict::Stale(w) if w.contains("outside")),
        "{odd:?}"
    );
}

#[test]
fn a_long_list_is_cut() {
    let f = Footprint::of(&plan(
        (0..30).map(|i| issue(&format!("k{i:02}"), "u")).collect(),
    ));
    let changes: Vec<Changed> = (0..30)
        .map(|i| changed(2, Address::card(format!("k{i:02}"))))
        .collect();
    let Verdict::Stale(why) = judge(&at(1), 2, &f, &changes, &[run(2)]) else {
        panic!("stale");
    };
    assert!(why.contains("and 20 more"), "{why}");
    assert!(!why.contains("k29"), "{why}");
}

#[test]
fn the_same_changes_planned_again_do_not_differ() {
    let reviewed = plan(vec![issue("a", "u-1"), issue("b", "u-2")]);
    let mut now = reviewed.clone();
    now.actions[0].reason = "worded otherwise".into();
    now.actions[0].estimate = Estimate::none();
    now.actions
        .push(action(ResourceKind::Card, "z", ActionKind::Undeclared));
    assert!(differing_changes(&reviewed, &now).is_empty());

    now.actions[1].change = Change::Issue {
        after: attrs("u-3"),
    };
    now.actions.push(issue("c", "u-1"));
    now.actions.remove(0);
    assert_eq!(
        differing_changes(&reviewed, &now),
        [Address::card("a"), Address::card("b"), Address::card("c")]
    );
}

fn arb_address() -> impl Strategy<Value = Address> {
    let key = "[a-e]";
    prop_oneof![
        key.prop_map(Address::card),
        (key, "[xy]").prop_map(|(k, id)| Address::topup(&k, &id)),
        "u[1-4]".prop_map(|u| Address::user(&u)),
        ("u[1-4]", "S[12]").prop_map(|(u, s)| Address::cardholder(&u, &s)),
    ]
}

proptest! {
    /// Stale exactly when some change since the plan touches its footprint; never when the
    /// serial did not move.
    #[test]
    fn stale_iff_a_change_touches_the_footprint(
        keys in proptest::collection::btree_set("[a-e]", 0..4),
        log in proptest::collection::vec((1u64..=4, arb_address()), 0..12),
    ) {
        let p = plan(keys.iter().map(|k| issue(k, &format!("u{}", k.len()))).collect());
        let f = Footprint::of(&p);
        let changes: Vec<Changed> = log.iter().map(|(s, a)| changed(*s, a.clone())).collect();
        let runs: Vec<RunRecord> = (1..=4).map(run).collect();
        let verdict = judge(&at(0), 4, &f, &changes, &runs);
        let touched: Vec<&Changed> = changes.iter().filter(|c| f.touches(&c.address)).collect();
        match &verdict {
            Verdict::Stale(why) => {
                prop_assert!(!touched.is_empty(), "{}", why);
                for c in touched.iter().take(SHOW) {
                    prop_assert!(why.contains(&format!("{} {}", c.address.kind, c.address.key)), "{}", why);
                }
            }
            Verdict::MovedOn { changes: n, runs: r } => {
                prop_assert!(touched.is_empty());
                prop_assert_eq!(*n, changes.len());
                prop_assert_eq!(*r, 4);
            }
            Verdict::Current => prop_assert!(false, "the serial moved"),
        }
        prop_assert_eq!(judge(&at(4), 4, &f, &changes, &runs), Verdict::Current);
        // A plan of no changes is never stale.
        prop_assert!(!matches!(
            judge(&at(0), 4, &Footprint::of(&plan(Vec::new())), &changes, &runs),
            Verdict::Stale(_)
        ));
    }
}
