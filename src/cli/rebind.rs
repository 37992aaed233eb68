//! `cardform state replace-provider`: the one way a state moves to another provider. Every other
//! command refuses a state recorded for a provider it does not talk to (see `session::write_for`);
//! this records the provider this run would talk to instead, as a serial of its own, so history
//! shows when the state moved, from what, to what, and by whom.

use super::args::ReplaceProviderArgs;
use super::session::{self, Session};
use super::settings::{self, Global};
use super::{CliError, Outcome};

pub async fn replace_provider(
    args: &ReplaceProviderArgs,
    global: &Global,
) -> Result<Outcome, CliError> {
    let wait = settings::lock_wait(&args.lock.lock_timeout)?;
    let to = super::provider::identity(global)?;
    // Moving needs a state to move: never create one for it.
    session::reading_required(global, async |_: &crate::state::Store| Ok(())).await?;
    session::write(global, wait, async |s: &Session| {
        let store = s.store();
        let from = store.provider().await?;
        if from.as_deref() == Some(to.as_str()) {
            println!(
                "{} already belongs to provider {to}: nothing to change.",
                global.state
            );
            return Ok(Outcome::Success);
        }
        let was = from.as_deref().unwrap_or("none recorded");
        if !args.auto_approve {
            println!(
                "{} {} belongs to provider {was}; this records {to} instead. Its cards, orders \
                 and money were made at {was}: only go on if they now live at {to} (the same \
                 provider under a new address, or a state moved on purpose).",
                global.style.bold("Replace provider:"),
                global.state
            );
            let Some(yes) = super::apply::confirmed("Do you want to record the new provider?")?
            else {
                return Err(CliError::Usage(format!(
                    "state replace-provider needs confirmation, but standard input is not a \
                     terminal: pass --auto-approve to record provider {to} (now {was})"
                )));
            };
            if !yes {
                println!("Replace provider cancelled: the state still belongs to {was}.");
                return Ok(Outcome::Success);
            }
        }
        let serial = s
            .run(async |serial| {
                store.set_provider(to.as_str()).await?;
                let summary = serde_json::json!({
                    "provider_from": from,
                    "provider_to": to.as_str(),
                });
                Ok((serial, summary))
            })
            .await?;
        println!(
            "{} now belongs to provider {to} (was {was}), recorded as serial {serial}.",
            global.state
        );
        Ok(Outcome::Success)
    })
    .await
}
