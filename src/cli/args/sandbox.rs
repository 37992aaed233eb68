//! The clap definitions of `cardform sandbox` and the spellings of its behaviour switches. Must
//! not start or configure the sandbox: the `sandbox` command maps these onto `crate::sandbox`.

use clap::{Args, ValueEnum};

#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The API key clients must send (the API-KEY header)
    #[arg(long, default_value = "sandbox-key")]
    pub api_key: String,
    /// The secret that encrypts every request and response body
    #[arg(long, default_value = "sandbox-secret")]
    pub api_secret: String,
    /// Starting master balance (USDT)
    #[arg(long, default_value = "10000.00")]
    pub balance: String,
    /// How long an order takes to finish (e.g. 2s, 500ms)
    #[arg(long, default_value = "2s")]
    pub order_latency: String,
    /// Order latency that changes during the run: LATENCY[@FROM],… with FROM counted from the
    /// first order (e.g. 1s,200ms@10s,1s@20s: slow, fast from 10 s, slow again from 20 s)
    #[arg(long, value_name = "SCHEDULE")]
    pub latency_schedule: Option<String>,
    /// What orders say of when they ended (completed_at/failed_at, optional in the reference)
    #[arg(long, value_enum, value_name = "MODE", default_value = "precise")]
    pub completed_at: CompletedAtArg,
    /// Requests per second before answering 429 (with Retry-After)
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// How --rate-limit counts requests
    #[arg(long, value_enum, value_name = "SHAPE", default_value = "sliding")]
    pub rate_limit_shape: LimitShape,
    /// Fraction of issue orders that end failed
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of requests answered 5xx without doing anything
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of cards/create, users/create and cardholders/create calls carried out, then
    /// answered with a dropped connection
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Seed of the fault decisions (fail, error and drop rates), so a run can be repeated
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// external_user_id whose cardholder is not ready: its KYC stays pending forever; repeatable
    #[arg(long, value_name = "ID", alias = "not-ready")]
    pub not_ready_user: Vec<String>,
    /// external_user_id the provider does not know until created (without --require-people);
    /// repeatable
    #[arg(long, value_name = "ID", alias = "unknown")]
    pub unknown_user: Vec<String>,
    /// How long a new cardholder's KYC stays pending before it is decided (e.g. 2s, 500ms; 0:
    /// decided at once)
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub kyc_latency: String,
    /// external_user_id whose KYC ends rejected (registration failed) after --kyc-latency;
    /// repeatable
    #[arg(long, value_name = "ID", alias = "kyc-reject")]
    pub kyc_reject_user: Vec<String>,
    /// external_user_id whose KYC ends expired (approved once, lapsed since) after
    /// --kyc-latency; repeatable
    #[arg(long, value_name = "ID")]
    pub kyc_expire_user: Vec<String>,
    /// People mode: nobody is known until users/create, then cardholders/create at the product's
    /// subprovider (cards/create answers cardholder_not_found before)
    #[arg(long)]
    pub require_people: bool,
    /// Product whose issue orders all end failed (a product misconfigured at the provider);
    /// repeatable
    #[arg(long, value_name = "CODE")]
    pub fail_product: Vec<String>,
    /// Product whose top-up orders all end failed; repeatable
    #[arg(long, value_name = "CODE")]
    pub fail_topup_product: Vec<String>,
    /// What a failed order gives back: all of its charge, half of it, or nothing (then it
    /// carries no `refunded_amount`)
    #[arg(long, value_enum, default_value = "full")]
    pub refund: RefundArg,
    /// Hostile: every issue order names the first card id ever issued (a provider mixing its
    /// answers up), for testing that cardform binds no card id twice
    #[arg(long)]
    pub same_card_for_every_order: bool,
    /// Hostile: issue orders end `completed` without a `card_id`
    #[arg(long)]
    pub completed_without_card_id: bool,
    /// Hostile: issue and top-up orders charge their fee times this (10: ten times the fee;
    /// -1: a credit, the balance goes up)
    #[arg(long, value_name = "FACTOR", allow_hyphen_values = true)]
    pub charge_multiplier: Option<String>,
    /// Webhooks: wait this long before each delivery (e.g. 500ms)
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub webhook_delay: String,
    /// Webhooks: send every delivery this many extra times
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub webhook_duplicate: u32,
    /// Webhooks: fraction of terminal orders whose delivery is never sent
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub webhook_drop_rate: f64,
    /// Webhooks: deliver an older, non-terminal status after the terminal one, and shuffle
    /// the deliveries of orders that ended together
    #[arg(long)]
    pub webhook_reorder: bool,
    /// Webhooks: per order, also deliver one with a wrong API-KEY and one sealed with a wrong
    /// secret (a receiver must refuse both)
    #[arg(long)]
    pub webhook_forged: bool,
    /// Keep the sandbox's world in this JSON file across runs
    #[arg(long, value_name = "PATH")]
    pub world: Option<std::path::PathBuf>,
}

/// The policies of `crate::sandbox::RefundPolicy`, as `--refund` spells them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RefundArg {
    Full,
    Partial,
    None,
}

/// The shapes of `crate::sandbox::RateLimitShape`, as `--rate-limit-shape` spells them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LimitShape {
    /// At most N requests in any one-second window (the strictest; refused requests count too)
    Sliding,
    /// At most N requests per wall-clock second; the count resets on each second boundary
    Fixed,
    /// A token bucket: N tokens, refilled at N per second (one second of burst)
    Bucket,
}

/// The modes of `crate::sandbox::CompletedAt`, as `--completed-at` spells them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CompletedAtArg {
    /// The real time the order ended
    Precise,
    /// Never sent
    Omitted,
    /// The time of the first read that saw the order ended, not the real end
    OnRead,
    /// The real time, truncated to whole seconds
    Seconds,
}
