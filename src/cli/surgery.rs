//! `cardform state rm` and `cardform import`: surgery on state, each its own serial under the lock.
//! Neither sends a mutation to the provider: `rm` forgets a card, `import` reads one (`cards/get`)
//! and adopts it.

use super::args::{ImportArgs, MvArgs, RmArgs};
use super::out::{no_such_card, print};
use super::provider::Provider;
use super::session::{self, Session};
use super::settings::{self, Global};
use super::show::parse_labels;
use super::{CliError, Outcome};
use crate::exec::refresh;
use crate::model::{Address, DesiredStatus, Labels};
use crate::state::{CardPhase, CardRecord, OrderKind};
use crate::wire::{CardStatus, SystemClock, timestamp::now_rfc3339};

pub async fn rm(args: &RmArgs, global: &Global) -> Result<Outcome, CliError> {
    let wait = settings::lock_wait(&args.lock.lock_timeout)?;
    // Forgetting needs something to forget: never create a state for it.
    session::reading_required(global, async |_: &crate::state::Store| Ok(())).await?;
    let key = args.key.as_str();
    let text = session::write(global, wait, async |s: &Session| {
        let store = s.store();
        let card = store
            .get_card(key)
            .await?
            .ok_or_else(|| no_such_card(key, global))?;
        let orders = store.orders_of(&Address::card(key)).await?;
        // Declared again as it is, the key takes back its latest issue order (see `plan`): one
        // the journal holds as acknowledged and completed is checked, not sent again, and gives
        // this card back when this card is what that attempt issued.
        let comes_back = orders
            .iter()
            .filter(|o| o.kind == OrderKind::Issue)
            .max_by_key(|o| o.attempt)
            .is_some_and(|o| {
                o.attempt == card.attempt
                    && o.order_id.is_some()
                    && o.phase == crate::state::OrderPhase::Completed
            });
        let open: Vec<_> = orders.into_iter().filter(|o| o.phase.is_open()).collect();
        if !open.is_empty() && !args.force {
            let which: Vec<String> = open
                .iter()
                .map(|o| {
                    format!(
                        "{} order {}",
                        o.kind.as_str(),
                        o.order_id.as_deref().unwrap_or("(not yet acknowledged)")
                    )
                })
                .collect();
            return Err(CliError::refused(format!(
                "refusing to forget {key}: its {} still open and would no longer be tracked; run `{}` (or `{}`) until it finishes, or pass --force",
                if which.len() == 1 {
                    format!("{} is", which[0])
                } else {
                    format!("{} are", which.join(", "))
                },
                global.cmd("apply -f DECLARATIONS"),
                global.cmd("refresh")
            )));
        }
        let summary = serde_json::json!({
            "removed": [key],
            "card_id": card.card_id,
            "forced_open_orders": open.len(),
        });
        let serial = s
            .run(async |serial| {
                store.remove_card(serial, key).await?;
                Ok((serial, summary))
            })
            .await?;
        let mut text = format!(
            "Removed {key} from state (serial {serial}). Card {} was not touched at the provider.\n",
            card.card_id.as_deref().unwrap_or("(none)")
        );
        // What declaring the key again will do, said while the user can still choose.
        if let Some(id) = &card.card_id {
            text.push_str(&if comes_back {
                format!(
                    "Declared again, {key} takes this same card back at no charge: the journal \
                     keeps its issue order, which is checked rather than sent again (declared \
                     with another product, user or top-up, it is a new card).\n"
                )
            } else {
                format!(
                    "Declared again, {key} may be issued as a new card (and charged for); `{}` \
                     takes this one back instead.\n",
                    global.cmd(&format!("import {key} {id}"))
                )
            });
        }
        Ok(text)
    })
    .await?;
    print(&text)
}

/// `state mv OLD NEW`: a rename in state only, so a key renamed in the declarations keeps its
/// card instead of planning a new one (and a new fee).
pub async fn mv(args: &MvArgs, global: &Global) -> Result<Outcome, CliError> {
    check_key(&args.new)?;
    let wait = settings::lock_wait(&args.lock.lock_timeout)?;
    session::reading_required(global, async |_: &crate::state::Store| Ok(())).await?;
    let (old, new) = (args.old.as_str(), args.new.as_str());
    let text = session::write(global, wait, async |s: &Session| {
        // Checked before the run begins, so a typo costs no serial.
        if s.store().get_card(old).await?.is_none() {
            return Err(no_such_card(old, global));
        }
        // A key that left state keeps its orders: moving another card there would mix the two
        // histories, and the next issue attempt under it could take back the old card.
        if s.store().get_card(new).await?.is_none()
            && !s.store().orders_of(&Address::card(new)).await?.is_empty()
        {
            return Err(CliError::refused(format!(
                "refusing to move {old} to {new}: the journal holds the orders of an earlier card \
                 under {new}, taken out of state; its history would mix with {old}'s (nothing was \
                 changed)"
            ))
            .hint("choose another key"));
        }
        let serial = s
            .run(async |serial| {
                if !s.store().rename_card(serial, old, new).await? {
                    return Err(no_such_card(old, global));
                }
                Ok((serial, serde_json::json!({ "moved": [old, new] })))
            })
            .await?;
        Ok(format!(
            "Moved {old} to {new} (serial {serial}): its card, orders, charges and audit trail \
             come along. Declare it as {new}; nothing was sent to the provider.\n"
        ))
    })
    .await?;
    print(&text)
}

/// An imported key must be declarable: the same rule as declarations.
fn check_key(key: &str) -> Result<(), CliError> {
    crate::model::check_key(key).map_err(|e| {
        CliError::Usage(format!(
            "invalid card key {key:?}: {e}; {}",
            crate::model::KeyError::RULE
        ))
    })
}

pub async fn import(args: &ImportArgs, global: &Global) -> Result<Outcome, CliError> {
    check_key(&args.key)?;
    let labels = parse_labels("--label", &args.label)?;
    let wait = settings::lock_wait(&args.lock.lock_timeout)?;
    let provider = Provider::connect(global, None).await?;
    let result = session::write_for(global, wait, &provider.id, async |s: &Session| {
        import_locked(args, labels, s, &provider, global).await
    })
    .await;
    provider.shutdown().await;
    print(&result?)
}

async fn import_locked(
    args: &ImportArgs,
    labels: Labels,
    session: &Session,
    provider: &Provider,
    global: &Global,
) -> Result<String, CliError> {
    let store = session.store();
    let key = args.key.as_str();
    let snapshot = store.snapshot().await?;
    if snapshot.cards.contains_key(key) {
        return Err(
            CliError::refused(format!("{key} is already in state")).hint(format!(
                "pick another key, or `{}` first",
                global.cmd(&format!("state rm {key}"))
            )),
        );
    }
    if let Some(other) = snapshot
        .cards
        .values()
        .find(|c| c.card_id.as_deref() == Some(args.card_id.as_str()))
    {
        return Err(CliError::refused(format!(
            "card {} is already managed as {}",
            args.card_id, other.key
        )));
    }
    let seen = match provider.client.get_card(&args.card_id).await {
        Ok(seen) => seen,
        // The provider's generic hint ("run refresh") is for a card state already holds; here
        // the id was typed by hand, and the likeliest fault is the typing.
        Err(crate::client::ClientError::Provider(e))
            if [
                crate::wire::error::slug::CARD_NOT_FOUND,
                crate::wire::error::slug::INVALID_CARD_ID,
            ]
            .contains(&e.slug.as_str()) =>
        {
            return Err(CliError::refused(format!(
                "the provider has no card {:?} ({}); nothing was imported",
                args.card_id, e.slug
            ))
            .hint("check the card id (copy it from the provider's dashboard or API)"));
        }
        Err(e) => return Err(e.into()),
    };
    // Keep what state may hold and let the Card (PAN, CVV) go at once.
    let status = seen.status.clone();
    let last4 = seen.last4();
    let user = seen.external_user_id.clone();
    let product = seen.product_code.clone();
    drop(seen);
    let (Some(user), Some(product)) = (user, product) else {
        return Err(CliError::refused(format!(
            "the provider's card {} has no external_user_id or product_code: cannot manage it",
            args.card_id
        )));
    };
    let phase = refresh::phase_of(&status.to_string()).unwrap_or(CardPhase::Active);
    // A key forgotten with `state rm` keeps its journal: start past its attempts so a later
    // re-issue never reuses one of its idempotency keys.
    let attempt = store
        .orders_of(&Address::card(key))
        .await?
        .iter()
        .filter(|o| o.kind == OrderKind::Issue)
        .map(|o| o.attempt)
        .max()
        .unwrap_or(1);
    let now = now_rfc3339(&SystemClock);
    let card = CardRecord {
        key: key.into(),
        external_user_id: user.into(),
        product_code: product.into(),
        initial_topup: None,
        desired_status: if status == CardStatus::Frozen {
            DesiredStatus::Frozen
        } else {
            DesiredStatus::Active
        },
        labels,
        card_id: Some(args.card_id.as_str().into()),
        phase,
        provider_status: Some(status.to_string().into()),
        last4: last4.map(Into::into),
        charged: rust_decimal::Decimal::ZERO,
        attempt,
        replaced_by: None,
        balance: None,
        created_at: now.as_str().into(),
        updated_at: now.into(),
    };
    let summary = serde_json::json!({"imported": [key], "card_id": args.card_id});
    let serial = session
        .run(async |serial| {
            store.put_card(serial, &card).await?;
            Ok((serial, summary))
        })
        .await?;
    Ok(format!(
        "Imported card {} as {key} ({}, {}, user {}; serial {serial}). Nothing was charged.\n",
        args.card_id,
        card.phase.as_str(),
        card.product_code,
        card.external_user_id
    ))
}
