//! Declared people against state: a `create_user` for each person the provider has not
//! been asked about yet, a `create_cardholder` for each subprovider their cards need, and the
//! cards issued in the same plan made to wait for them. A cardholder that exists is compared by
//! keyed digests only: a changed KYC field is drift to settle with the provider, never an action
//! (the API cannot edit one).
//!
//! Sees no personal data: a [`Person`] carries what may be shown and the digests, made at the
//! edge with the key the journal uses.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change, Estimate, PersonChange, Problem, ProviderFacts, Warning};
use crate::decl::DesiredCard;
use crate::model::{Address, Labels, ResourceKind};
use crate::state::{CardholderRecord, OrderPhase, ResourceImage, Snapshot};

/// A declared person as the planner sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub external_user_id: String,
    /// All that may be shown of them: initials and country (`A. S., US`).
    pub shown: String,
    /// Each KYC field as the journal holds it: personal ones as keyed digests, in the form the
    /// journaled `cardholders/create` request has them.
    pub journal_fields: BTreeMap<String, String>,
    /// Kept in the records of their user and cardholders.
    pub labels: Labels,
}

/// KYC statuses after which a card cannot be issued without the provider's help.
const KYC_DEAD_ENDS: [&str; 2] = ["rejected", "expired"];

/// Adds the people's actions to `actions` and makes the card issues they gate depend on them.
pub(super) fn plan_people(
    people: &[Person],
    desired: &[DesiredCard],
    state: &Snapshot,
    facts: &ProviderFacts,
    actions: &mut Vec<Action>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) {
    if people.is_empty() {
        return;
    }
    let needs = subprovider_needs(people, desired, facts, problems);

    // What must exist before a person's card can be issued, by (person, subprovider).
    let mut gates: BTreeMap<(String, String), Vec<Address>> = BTreeMap::new();
    let (mut waiting, mut waiting_count) = (Vec::new(), 0usize);
    for person in people {
        let uid = person.external_user_id.as_str();
        if !needs.contains_key(uid) && !has_cardholder(state, uid) {
            waiting_count += 1;
            if waiting.len() < 5 {
                waiting.push(uid.to_owned());
            }
        }
        let user = Address::user(uid);
        let user_action = create(&user, known(state, &user), person, "");
        let user_planned = user_action.is_some();
        match user_action {
            Some(a) => actions.push(a),
            None => actions.extend(relabel(&user, state, person)),
        }
        for sub in needs.get(uid).into_iter().flatten() {
            let holder = Address::cardholder(uid, sub);
            let known = known(state, &holder);
            let mut gate = Vec::new();
            if user_planned {
                gate.push(user.clone());
            }
            match create(&holder, known, person, sub) {
                Some(mut action) => {
                    action.depends_on = gate.clone();
                    gate.push(holder.clone());
                    actions.push(action);
                }
                None => {
                    actions.extend(relabel(&holder, state, person));
                    if let Some(known) = known.and_then(ResourceImage::as_cardholder) {
                        kyc_warnings(person, sub, known, warnings);
                    }
                }
            }
            if !gate.is_empty() {
                gates.insert((uid.to_owned(), sub.clone()), gate);
            }
        }
    }
    if waiting_count > 0 {
        warnings.push(Warning::NoCardholderYet {
            external_user_ids: waiting,
            count: waiting_count,
        });
    }
    if !gates.is_empty() {
        wait_for_gates(actions, facts, &gates);
    }
}

/// The subprovider of every declared card, by person: one cardholder per user per subprovider.
/// A declared person's card whose product has no subprovider is a problem.
fn subprovider_needs<'a>(
    people: &[Person],
    desired: &'a [DesiredCard],
    facts: &ProviderFacts,
    problems: &mut Vec<Problem>,
) -> BTreeMap<&'a str, BTreeSet<String>> {
    let mut needs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for card in desired {
        let Some(product) = facts.products.get(card.product_code.as_str()) else {
            continue; // An unknown product is its own problem.
        };
        match product
            .subprovider_code
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            Some(sub) => {
                needs
                    .entry(card.external_user_id.as_str())
                    .or_default()
                    .insert(sub.to_owned());
            }
            None if people
                .binary_search_by(|p| p.external_user_id.as_str().cmp(&card.external_user_id))
                .is_ok() =>
            {
                problems.push(Problem::NoSubprovider {
                    product_code: card.product_code.to_string(),
                    external_user_id: card.external_user_id.to_string(),
                })
            }
            None => {}
        }
    }
    needs
}

/// What an existing cardholder's record says that needs a person's attention: KYC fields that
/// differ from the declared ones, or a KYC status no card can be issued past.
fn kyc_warnings(person: &Person, sub: &str, known: &CardholderRecord, warnings: &mut Vec<Warning>) {
    let uid = person.external_user_id.as_str();
    let fields = drifted(&person.journal_fields, known);
    if !fields.is_empty() {
        warnings.push(Warning::KycDrift {
            external_user_id: uid.to_owned(),
            subprovider: sub.to_owned(),
            fields,
        });
    }
    if let Some(kyc) = known
        .kyc_status
        .as_deref()
        .filter(|k| KYC_DEAD_ENDS.contains(k))
    {
        warnings.push(Warning::KycRejected {
            external_user_id: uid.to_owned(),
            subprovider: sub.to_owned(),
            kyc_status: kyc.to_owned(),
        });
    }
}

/// Makes each card issue wait for the user and cardholder its person and product need.
fn wait_for_gates(
    actions: &mut [Action],
    facts: &ProviderFacts,
    gates: &BTreeMap<(String, String), Vec<Address>>,
) {
    for action in actions.iter_mut().filter(|a| a.kind().issues_card()) {
        let Some(after) = action.after() else {
            continue;
        };
        let Some(sub) = facts
            .products
            .get(after.product_code.as_str())
            .and_then(|p| p.subprovider_code.clone())
        else {
            continue;
        };
        if let Some(gate) = gates.get(&(after.external_user_id.to_string(), sub)) {
            if let Some(holder) = gate.last() {
                action.reason = format!("{}; after {holder} (waits for KYC)", action.reason).into();
            }
            action.depends_on.extend(gate.iter().cloned());
        }
    }
}

/// Whether state holds a cardholder of `uid` at any subprovider.
fn has_cardholder(state: &Snapshot, uid: &str) -> bool {
    // Cardholder addresses sort by `UID<separator>SUBPROVIDER`: theirs start where this prefix is.
    let prefix = Address::cardholder(uid, "");
    state
        .resources
        .range(&prefix..)
        .next()
        .is_some_and(|(a, _)| a.kind == ResourceKind::Cardholder && a.key.starts_with(&prefix.key))
}

/// What state holds of the user or cardholder at `address`: its record, which follows its
/// journal entries in their own transactions.
fn known<'a>(state: &'a Snapshot, address: &Address) -> Option<&'a ResourceImage> {
    state.resources.get(address).map(|r| &r.image)
}

/// The action creating `address` for `person`, unless state shows it exists. An attempt
/// whose outcome is unknown is sent again under its own key (the provider answers what it did);
/// one the provider refused gets the next attempt.
fn create(
    address: &Address,
    known: Option<&ResourceImage>,
    person: &Person,
    subprovider: &str,
) -> Option<Action> {
    let (attempt, reason): (_, std::borrow::Cow<'static, str>) =
        match known.map(|k| (k, k.progress())) {
            None => (1, "declared, not in state".into()),
            // Created, or adopted: it exists at the provider.
            Some((_, (_, OrderPhase::Completed))) => return None,
            Some((k, (attempt, OrderPhase::Failed))) => (
                attempt + 1,
                format!(
                    "the last attempt was refused ({})",
                    k.error_slug().unwrap_or("unknown")
                )
                .into(),
            ),
            Some((_, (attempt, _))) => (
                attempt,
                "sent before, outcome unknown: sent again under the same key".into(),
            ),
        };
    let shown = Box::new(PersonChange {
        shown: person.shown.clone(),
        labels: person.labels.clone(),
    });
    let change = match address.kind {
        ResourceKind::User => Change::CreateUser(shown),
        _ => Change::CreateCardholder(shown),
    };
    Some(Action {
        key: address.key.as_str().into(),
        reason,
        product_code: subprovider.into(),
        attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change,
    })
}

/// A `~ update_labels` of an existing person's record whose labels differ from the declared
/// ones (state only: the provider has no labels).
fn relabel(address: &Address, state: &Snapshot, person: &Person) -> Option<Action> {
    let record = state.resources.get(address)?;
    if record.image.labels() == &person.labels {
        return None;
    }
    Some(Action {
        key: address.key.as_str().into(),
        reason: "labels changed (state only, no provider call)".into(),
        product_code: address.subprovider().unwrap_or_default().into(),
        attempt: 0,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change: Change::RelabelPerson {
            resource: address.kind,
            person: Box::new(PersonChange {
                shown: person.shown.clone(),
                labels: person.labels.clone(),
            }),
        },
    })
}

/// The KYC fields whose declared value differs from the one sent, by name.
fn drifted(declared: &BTreeMap<String, String>, known: &CardholderRecord) -> Vec<String> {
    declared
        .iter()
        .filter(|(field, value)| known.kyc.get(*field).is_some_and(|sent| sent != *value))
        .map(|(field, _)| field.clone())
        .collect()
}
