//! `cardform show` and `cardform state list`: what state holds, one card in detail or a table.
//! Read-only: never creates or changes a state.

use std::collections::BTreeMap;

use super::args::{ListArgs, ShowArgs};
use super::out::{no_such_card, print};
use super::settings::Global;
use super::{CliError, Outcome, session};
use crate::model::{Address, Labels};
use crate::render::state as view;
use crate::state::{CardPhase, Store};

pub async fn show(args: &ShowArgs, global: &Global) -> Result<Outcome, CliError> {
    session::reading(global, async |store: Option<&Store>| {
        show_in(args, global, store).await
    })
    .await
}

async fn show_in(
    args: &ShowArgs,
    global: &Global,
    store: Option<&Store>,
) -> Result<Outcome, CliError> {
    let Some(store) = store else {
        return match &args.key {
            Some(key) => Err(no_such_card(key, global)),
            None if args.json => print("[]\n"),
            None => print(&view::cards_table([], global.style, "")),
        };
    };
    let cur = store.currency().await?.unwrap_or_default();
    match &args.key {
        Some(key) => {
            let card = store
                .get_card(key)
                .await?
                .ok_or_else(|| no_such_card(key, global))?;
            let mut orders = store.orders_of(&Address::card(key.as_str())).await?;
            // Its top-ups' orders too: the card's money is theirs as well.
            orders.extend(store.topup_orders_of(key).await?);
            print(&if args.json {
                view::card_detail_json(&card, &orders)
            } else {
                view::card_detail(&card, &orders, global.style, &cur)
            })
        }
        None => {
            let snapshot = store.snapshot().await?;
            print(&if args.json {
                view::cards_json(snapshot.cards.values())
            } else {
                view::cards_table(snapshot.cards.values(), global.style, &cur)
            })
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

pub async fn list(args: &ListArgs, global: &Global) -> Result<Outcome, CliError> {
    let status = args.status.as_deref().map(parse_phase).transpose()?;
    let labels = parse_labels("--label", &args.label)?;
    let (cards, cur) = session::reading(global, async |store: Option<&Store>| match store {
        Some(store) => Ok((store.snapshot().await?.cards, store.currency().await?)),
        None => Ok((BTreeMap::new(), None)),
    })
    .await?;
    let chosen = cards.values().filter(|c| {
        status.is_none_or(|s| c.phase == s)
            && args.product.as_ref().is_none_or(|p| &c.product_code == p)
            && labels.iter().all(|(k, v)| c.labels.get(k) == Some(v))
    });
    print(&if args.json {
        view::cards_json(chosen)
    } else {
        view::cards_table(chosen, global.style, cur.as_deref().unwrap_or_default())
    })
}
