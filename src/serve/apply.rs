//! What `cardform apply -f` and the `serve` reconcile loop share: the plan of declarations
//! against state, the provider facts a plan needs, and carrying an approved plan out through the
//! executor (whole, or a part at a time). One code path, so a reconcile spends exactly as an
//! apply would.
//!
//! Owns no flags, no output and no lock: callers resolve their settings, hold the state lock,
//! begin and finish the run, and draw or log the executor's events.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::client::{Client, ClientError};
use crate::decl::Declarations;
use crate::exec::{self, EventSink, ExecOptions, StopFlag, Summary};
use crate::plan::{self, DeclarationsRef, PlanDocument, PlanOptions, ProviderFacts, StateRef};
use crate::state::{Snapshot, Store};
use crate::wire::{BalanceRequest, Clock, ProductsRequest, SystemClock, timestamp::now_rfc3339};

/// Products and balance, fetched once per plan (concurrently).
pub async fn facts(client: &Client) -> Result<ProviderFacts, ClientError> {
    let (products, balance) = tokio::try_join!(
        client.call(&ProductsRequest {}, None),
        client.call(&BalanceRequest {}, None)
    )?;
    Ok(ProviderFacts {
        products: products
            .products
            .into_iter()
            .map(|p| (p.product_code.clone(), p))
            .collect(),
        balance: Some(balance.available),
        currency: balance.currency,
    })
}

/// The plan of `decls` against `snapshot`; `journal_key` keys the digests declared people are
/// compared by.
pub fn document(
    decls: &Declarations,
    snapshot: &Snapshot,
    facts: &ProviderFacts,
    options: &PlanOptions,
    journal_key: &[u8],
) -> PlanDocument {
    let people = exec::declared::planned(decls, journal_key);
    let p = plan::plan_all(
        &decls.cards,
        &decls.moves,
        &people,
        snapshot,
        facts,
        options,
    );
    PlanDocument::new(
        p,
        StateRef::new(&snapshot.lineage, snapshot.serial),
        DeclarationsRef {
            fingerprint: decls.fingerprint_keyed(journal_key),
            files: decls.files.clone(),
        },
        options.prune,
        &facts.currency,
        now_rfc3339(&SystemClock),
    )
}

/// Each product's subprovider, which says which of a person's cardholders a card's KYC answer is
/// about: asked (one products call) only when the run involves people at all.
pub async fn subproviders(
    client: &Client,
    forms: &BTreeMap<String, crate::wire::CreateCardholderRequest>,
    snapshot: &Snapshot,
) -> BTreeMap<String, String> {
    if forms.is_empty() && !snapshot.resources.keys().any(|a| a.kind.is_person()) {
        return BTreeMap::new();
    }
    facts(client)
        .await
        .map(|f| {
            f.products
                .into_values()
                .filter_map(|p| Some((p.product_code, p.subprovider_code?)))
                .collect()
        })
        .unwrap_or_default()
}

/// An approved plan's work, for [`carry_out`].
pub struct Carry {
    pub store: Store,
    pub client: Client,
    pub serial: u64,
    pub snapshot: Snapshot,
    pub actions: Vec<plan::Action>,
    /// Set when the fleet is carried out a part at a time (each part planned again).
    pub parts: Option<exec::parts::Parts>,
    pub options: ExecOptions,
    pub sink: EventSink,
    pub stop: StopFlag,
}

/// Carries out an approved plan as run `serial`: whole, or a part at a time.
pub async fn carry_out(c: Carry) -> Result<Summary, exec::parts::PartsError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let Some(parts) = c.parts else {
        return exec::execute(
            c.store, c.client, clock, c.serial, c.snapshot, c.actions, c.options, c.sink, c.stop,
        )
        .await
        .map_err(|e| Box::new(e).into());
    };
    // Each part is planned again as it comes: the whole plan's actions need not be held.
    drop(c.actions);
    let mut run = exec::Run::start(
        c.store,
        c.client,
        clock,
        c.serial,
        &c.snapshot,
        parts.total,
        c.options,
        c.sink,
        c.stop,
    )
    .await
    .map_err(Box::new)?;
    parts.carry_out(&mut run, &c.snapshot).await?;
    Ok(run.finish().await)
}
