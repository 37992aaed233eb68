//! `cardform sandbox`: the built-in provider stand-in, in the foreground until Ctrl-C.

use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;

use super::args::{CompletedAtArg, LimitShape, RefundArg, SandboxArgs};
use super::settings::parse_duration;
use super::{CliError, Outcome};
use crate::sandbox::{
    self, CompletedAt, RateLimitShape, RefundPolicy, SandboxConfig, WebhookFaults,
};
use crate::wire::Secret;

pub async fn run(a: &SandboxArgs) -> Result<Outcome, CliError> {
    let config = config(a)?;
    let handle = sandbox::spawn(config.clone())
        .await
        .map_err(|e| CliError::refused(format!("cannot start the sandbox: {e}")))?;
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
        ("--webhook-drop-rate", a.webhook_drop_rate),
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
        latency_schedule: match &a.latency_schedule {
            Some(s) => latency_schedule(s)?,
            None => Vec::new(),
        },
        completed_at: match a.completed_at {
            CompletedAtArg::Precise => CompletedAt::Precise,
            CompletedAtArg::Omitted => CompletedAt::Omitted,
            CompletedAtArg::OnRead => CompletedAt::OnRead,
            CompletedAtArg::Seconds => CompletedAt::Seconds,
        },
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
        webhooks: WebhookFaults {
            delay: parse_duration("--webhook-delay", &a.webhook_delay)?,
            duplicate: a.webhook_duplicate,
            drop_rate: a.webhook_drop_rate,
            reorder: a.webhook_reorder,
            forged: a.webhook_forged,
        },
        ..SandboxConfig::default()
    };
    Ok(config)
}

/// `--latency-schedule LATENCY[@FROM],…`: steps of order latency, each from its offset (a step
/// without one starts at 0), in increasing order.
fn latency_schedule(s: &str) -> Result<Vec<(Duration, Duration)>, CliError> {
    let flag = "--latency-schedule";
    let mut steps = Vec::new();
    for step in s.split(',') {
        let (latency, from) = step.split_once('@').unwrap_or((step, "0s"));
        let step = (parse_duration(flag, from)?, parse_duration(flag, latency)?);
        if steps.last().is_some_and(|&(prev, _)| prev >= step.0) {
            return Err(CliError::Usage(format!(
                "{flag} {s:?}: steps must start at increasing times (LATENCY@FROM,…)"
            )));
        }
        steps.push(step);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_schedule_reads_as_steps() {
        let ms = Duration::from_millis;
        assert_eq!(
            latency_schedule("1s,200ms@10s,1s@20s").unwrap(),
            vec![
                (ms(0), ms(1000)),
                (ms(10_000), ms(200)),
                (ms(20_000), ms(1000))
            ]
        );
        assert!(latency_schedule("1s@10s,2s@5s").is_err());
        assert!(latency_schedule("fast").is_err());
    }
}
