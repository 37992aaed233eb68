//! `cardform show` and `cardform state list`: what state holds, one card in detail or a table;
//! or, as Terraform's `show PLANFILE`, a plan saved with `plan --out`. Read-only: never creates
//! or changes a state.

use std::collections::BTreeMap;

use super::args::{Format, ListArgs, ShowArgs};
use super::out::{no_such_card, print};
use super::settings::Global;
use super::{CliError, Outcome, session};
use crate::model::{Address, Labels};
use crate::render::state as view;
use crate::state::{CardPhase, OrderPhase, Store};

pub async fn show(args: &ShowArgs, global: &Global) -> Result<Outcome, CliError> {
    let mut not_a_plan = None;
    if let Some(arg) = &args.key {
        match saved_plan(arg) {
            Ok(Some(doc)) => return show_plan(&doc, arg, args, global),
            Ok(None) => {}
            // Keys may end in `.json` too: a file that is no plan falls back to the key, and the
            // reason it was no plan is said only if no card has that key either.
            Err(why) => not_a_plan = Some(why),
        }
    }
    if args.format == Format::Markdown {
        return Err(CliError::Usage(
            "--format markdown is for a saved plan (`cardform show plan.json --format \
             markdown`); a card or the card table prints as human text or --json"
                .into(),
        ));
    }
    let shown = session::reading(global, async |store: Option<&Store>| {
        show_in(args, global, store).await
    })
    .await;
    match (shown, not_a_plan, &args.key) {
        (Err(CliError::NoSuchCard { .. }), Some(why), Some(arg)) => {
            Err(CliError::refused(format!(
                "{arg} is neither a saved plan ({why}) nor a card in state {}",
                global.state
            )))
        }
        (shown, _, _) => shown,
    }
}

/// `arg` as a saved plan: `Ok(None)` when it is not an existing `.json` file (so a card key),
/// `Err` with the reason when it is one that holds no plan.
fn saved_plan(arg: &str) -> Result<Option<crate::plan::PlanDocument>, String> {
    let path = std::path::Path::new(arg);
    if !arg.ends_with(".json") || !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let doc =
        crate::plan::file::read(&text).map_err(|e| format!("not a cardform plan file: {e}"))?;
    let reads = crate::plan::file::READS;
    if !reads.contains(&doc.format_version) {
        return Err(format!(
            "a plan file of format {}, and this cardform reads formats {} and {}",
            doc.format_version, reads[0], reads[1]
        ));
    }
    Ok(Some(doc))
}

/// A saved plan, rendered as `cardform plan` rendered it; neither state nor provider is read.
fn show_plan(
    doc: &crate::plan::PlanDocument,
    path: &str,
    args: &ShowArgs,
    global: &Global,
) -> Result<Outcome, CliError> {
    use crate::render::plan as render;
    let format = if args.out.json {
        Format::Json
    } else {
        args.format
    };
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(doc).expect("plan documents serialize");
            print(&format!("{text}\n"))
        }
        Format::Markdown => print(&global.with_flags(&render::markdown(doc))),
        Format::Human => {
            let mut text = format!(
                "Saved plan {path}, made {} against state serial {}:\n\n",
                crate::render::safe(&doc.created_at),
                doc.state.serial
            );
            text.push_str(&global.with_flags(&render::human(doc, global.style, false)));
            if doc.applicable && doc.has_changes {
                text.push_str(&format!(
                    "\nApply exactly this plan with: {}\n",
                    global.cmd(&format!("apply {path}"))
                ));
            }
            print(&text)
        }
    }
}

async fn show_in(
    args: &ShowArgs,
    global: &Global,
    store: Option<&Store>,
) -> Result<Outcome, CliError> {
    let Some(store) = store else {
        return match &args.key {
            Some(key) => Err(no_such_card(key, global)),
            None if args.out.json => print("[]\n"),
            None => print(&view::cards_table([], global.style, "")),
        };
    };
    let cur = store.currency().await?.unwrap_or_default();
    match &args.key {
        Some(key) => {
            let Some(card) = store.get_card(key).await? else {
                // Not a card: a person, by external_user_id?
                let person: Vec<_> = store
                    .resources(None)
                    .await?
                    .into_iter()
                    .filter(|r| r.address.person() == Some(key.as_str()))
                    .collect();
                if person.is_empty() {
                    return Err(no_such_card(key, global));
                }
                let people = view::canonical_people(&person);
                return print(&if args.out.json {
                    let mut s = serde_json::to_string_pretty(&people).unwrap_or_default();
                    s.push('\n');
                    s
                } else {
                    view::people_table(&people, global.style)
                });
            };
            let mut orders = store.orders_of(&Address::card(key.as_str())).await?;
            // Its top-ups' orders too: the card's money is theirs as well.
            orders.extend(store.topup_orders_of(key).await?);
            let topups = view::canonical_topups(&store.topup_records_of(key).await?);
            let replaced = replaced_cards(store, &card).await?;
            print(&if args.out.json {
                let text = view::card_detail_json(&card, &topups, &orders);
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(mut v) if !replaced.is_empty() => {
                        v["replaced"] = serde_json::to_value(&replaced).unwrap_or_default();
                        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
                        s.push('\n');
                        s
                    }
                    _ => text,
                }
            } else {
                let mut out = view::card_detail(&card, &topups, &orders, global.style, &cur);
                if !replaced.is_empty() {
                    out.push_str(&format!("\n{}\n", global.style.bold("Replaced cards:")));
                    for old in &replaced {
                        out.push_str(&crate::render::safe(&format!(
                            "  attempt {}  card {}  {}  (kept as {})",
                            old.attempt,
                            old.card_id.as_deref().unwrap_or("-"),
                            old.phase.as_str(),
                            old.key
                        )));
                        out.push('\n');
                    }
                }
                out
            })
        }
        None => {
            let snapshot = store.snapshot().await?;
            if args.out.json {
                return print(&view::cards_json(snapshot.cards.values()));
            }
            let mut out = view::cards_table(snapshot.cards.values(), global.style, &cur);
            let people = snapshot
                .resources
                .keys()
                .filter(|a| a.kind.is_person())
                .count();
            if people > 0 {
                out.push_str(&global.with_flags(&format!(
                    "{people} users and cardholders are in state too: `cardform state list \
                     --people`\n"
                )));
            }
            print(&out)
        }
    }
}

pub(super) fn parse_labels(flag: &str, raw: &[String]) -> Result<Labels, CliError> {
    raw.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(CliError::Usage(format!(
                "{flag} {kv:?}: expected NAME=VALUE, e.g. team=ops"
            ))),
        })
        .collect()
}

fn parse_phase(s: &str) -> Result<CardPhase, CliError> {
    [
        CardPhase::Active,
        CardPhase::Frozen,
        CardPhase::Pending,
        CardPhase::Failed,
        CardPhase::Closed,
    ]
    .into_iter()
    .find(|p| p.as_str() == s.trim())
    .ok_or_else(|| {
        CliError::Usage(format!(
            "--status {s:?}: expected one of active, frozen, pending, failed, closed"
        ))
    })
}

/// The top-up phase `--status` names when listing top-ups.
fn parse_topup_phase(s: &str) -> Result<OrderPhase, CliError> {
    [
        OrderPhase::Prepared,
        OrderPhase::Open,
        OrderPhase::Completed,
        OrderPhase::Failed,
    ]
    .into_iter()
    .find(|p| p.as_str() == s.trim())
    .ok_or_else(|| {
        CliError::Usage(format!(
            "--status {s:?} with --topup: expected one of prepared, open, completed, failed"
        ))
    })
}

/// Whether top-up id `id` matches `--topup PATTERN` (an id, `PREFIX*`, or `*`).
fn topup_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => id == pattern,
    }
}

/// `state list --topup ID`: the top-ups listed like kubectl lists a kind, one row each, the
/// filters applying to them (`--product` to their card).
async fn list_topups(pattern: &str, args: &ListArgs, global: &Global) -> Result<Outcome, CliError> {
    let status = args.status.as_deref().map(parse_topup_phase).transpose()?;
    let labels = parse_labels("--label", &args.label)?;
    let (snapshot, cur) = session::reading(global, async |store: Option<&Store>| match store {
        Some(store) => Ok((Some(store.snapshot().await?), store.currency().await?)),
        None => Ok((None, None)),
    })
    .await?;
    let Some(snapshot) = snapshot else {
        return print(&if args.out.json {
            view::topups_json(&[])
        } else {
            view::topups_table(&[], global.style, "")
        });
    };
    let chosen: Vec<_> = snapshot
        .resources
        .values()
        .filter(|r| {
            r.image.as_topup().is_some_and(|t| {
                topup_matches(pattern, &t.id)
                    && status.is_none_or(|s| t.phase == s)
                    && labels.iter().all(|(k, v)| t.labels.get(k) == Some(v))
                    && args.product.as_ref().is_none_or(|p| {
                        snapshot
                            .cards
                            .get(t.card.as_str())
                            .is_some_and(|c| c.product_code == *p)
                    })
            })
        })
        .collect();
    let topups = view::canonical_topups(chosen);
    print(&if args.out.json {
        view::topups_json(&topups)
    } else {
        view::topups_table(&topups, global.style, cur.as_deref().unwrap_or_default())
    })
}

/// `state list --people`: the users and cardholders, a row each.
async fn list_people(args: &ListArgs, global: &Global) -> Result<Outcome, CliError> {
    let labels = parse_labels("--label", &args.label)?;
    let resources = session::reading(global, async |store: Option<&Store>| match store {
        Some(store) => Ok(store.resources(None).await?),
        None => Ok(Vec::new()),
    })
    .await?;
    let chosen = resources.iter().filter(|r| {
        r.address.kind.is_person()
            && labels
                .iter()
                .all(|(k, v)| r.image.labels().get(k) == Some(v))
    });
    let people: Vec<_> = view::canonical_people(chosen)
        .into_iter()
        .filter(|p| {
            args.status
                .as_deref()
                .is_none_or(|s| p.kyc_status.as_deref() == Some(s.trim()))
        })
        .collect();
    print(&if args.out.json {
        let mut s = serde_json::to_string_pretty(&people).unwrap_or_default();
        s.push('\n');
        s
    } else {
        view::people_table(&people, global.style)
    })
}

pub async fn list(args: &ListArgs, global: &Global) -> Result<Outcome, CliError> {
    if let Some(pattern) = &args.topup {
        return list_topups(pattern, args, global).await;
    }
    if args.people {
        return list_people(args, global).await;
    }
    let status = args.status.as_deref().map(parse_phase).transpose()?;
    let labels = parse_labels("--label", &args.label)?;
    let (cards, cur) = session::reading(global, async |store: Option<&Store>| match store {
        Some(store) => Ok((store.snapshot().await?.cards, store.currency().await?)),
        None => Ok((BTreeMap::new(), None)),
    })
    .await?;
    let chosen = cards.values().filter(|c| {
        status.is_none_or(|s| c.phase == s)
            && args.product.as_ref().is_none_or(|p| c.product_code == *p)
            && labels.iter().all(|(k, v)| c.labels.get(k) == Some(v))
    });
    print(&if args.out.json {
        view::cards_json(chosen)
    } else {
        view::cards_table(chosen, global.style, cur.as_deref().unwrap_or_default())
    })
}

/// The cards `card`'s key had before `--replace` (or a changed product or user) replaced them:
/// each kept in state under `KEY~ATTEMPT`, pointing at this key.
async fn replaced_cards(
    store: &Store,
    card: &crate::state::CardRecord,
) -> Result<Vec<crate::state::CardRecord>, CliError> {
    let mut replaced = Vec::new();
    for attempt in 1..card.attempt {
        if let Some(old) = store.get_card(&format!("{}~{attempt}", card.key)).await?
            && old.replaced_by.as_deref() == Some(card.key.as_str())
        {
            replaced.push(old);
        }
    }
    Ok(replaced)
}
