//! `cardform sandbox`: the built-in provider stand-in, in the foreground until Ctrl-C.

use rust_decimal::Decimal;
use std::str::FromStr;

use super::args::{LimitShape, RefundArg, SandboxArgs};
use super::settings::parse_duration;
use super::{CliError, Outcome};
use crate::sandbox::{self, RateLimitShape, RefundPolicy, SandboxConfig};
use crate::wire::Secret;

pub async fn run(a: &SandboxArgs) -> Result<Outcome, CliError> {
    let config = config(a)?;
    let handle = sandbox::spawn(config.clone())
        .await
        .map_err(|e| CliError::Other(format!("cannot start the sandbox: {e}")))?;
    println!("{}", handle.banner(&config));
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    Ok(Outcome::Success)
}

/// What the flags ask of a sandbox. Shared with the in-process `--sandbox`, which takes the same
/// flags from `CARDFORM_SANDBOX` (`super::provider`), so every fault is there too.
pub fn config(a: &SandboxArgs) -> Result<SandboxConfig, CliError> {
    for (flag, v) in [
        ("--fail-rate", a.fail_rate),
        ("--error-rate", a.error_rate),
        ("--drop-rate", a.drop_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(CliError::Usage(format!(
                "{flag} {v}: expected a fraction between 0 and 1"
            )));
        }
    }
    let balance = Decimal::from_str(&a.balance)
        .map_err(|_| CliError::Usage(format!("--balance {:?}: expected a decimal", a.balance)))?;
    let charge_multiplier = a
        .charge_multiplier
        .as_deref()
        .map(|m| {
            Decimal::from_str(m).map_err(|_| {
                CliError::Usage(format!("--charge-multiplier {m:?}: expected a decimal"))
            })
        })
        .transpose()?;
    let config = SandboxConfig {
        listen: a.listen,
        api_key: a.api_key.clone(),
        api_secret: Secret::new(a.api_secret.clone()),
        balance,
        order_latency: parse_duration("--order-latency", &a.order_latency)?,
        rate_limit: a.rate_limit,
        rate_limit_shape: match a.rate_limit_shape {
            LimitShape::Sliding => RateLimitShape::Sliding,
            LimitShape::Fixed => RateLimitShape::Fixed,
            LimitShape::Bucket => RateLimitShape::Bucket,
        },
        fail_rate: a.fail_rate,
        error_rate: a.error_rate,
        drop_rate: a.drop_rate,
        seed: a.seed,
        not_ready_users: a.not_ready_user.clone(),
        unknown_users: a.unknown_user.clone(),
        kyc_latency: parse_duration("--kyc-latency", &a.kyc_latency)?,
        kyc_rejected_users: a.kyc_reject_user.clone(),
        kyc_expired_users: a.kyc_expire_user.clone(),
        require_people: a.require_people,
        fail_products: a.fail_product.clone(),
        fail_topup_products: a.fail_topup_product.clone(),
        refund: match a.refund {
            RefundArg::Full => RefundPolicy::Full,
            RefundArg::Partial => RefundPolicy::Partial,
            RefundArg::None => RefundPolicy::None,
        },
        same_card_for_every_order: a.same_card_for_every_order,
        completed_without_card_id: a.completed_without_card_id,
        charge_multiplier,
        world_file: a.world.clone(),
        ..SandboxConfig::default()
    };
    Ok(config)
}
