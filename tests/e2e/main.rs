//! The one integration-test binary: every file drives the real `cardform` binary or library
//! against the built-in sandbox over loopback HTTP, with real SQLite files in temp dirs and, for
//! PostgreSQL, a real throwaway server (`pg`).

mod cli_apply;
mod cli_approvals;
mod cli_audit;
mod cli_bindings;
mod cli_config;
mod cli_dashboard;
mod cli_debug_log;
mod cli_decl_files;
mod cli_drift;
mod cli_errors;
mod cli_gitops;
mod cli_guard_rails;
mod cli_habits;
mod cli_latency;
mod cli_lifecycle;

mod cli_logs;
mod cli_money;
mod cli_named_states;
mod cli_parts;
mod cli_people;
mod cli_plan;
mod cli_plan_file;
mod cli_provider;
mod cli_readme;
mod cli_refresh_only;
mod cli_release;
mod cli_replace;
mod cli_reports;
mod cli_rollout;
mod cli_sandbox_settings;
mod cli_serve;
mod cli_shared_state;
mod cli_sharp_edges;
mod cli_state_files;
mod cli_text_safety;
mod cli_topups;
mod cli_trust;
mod cli_unreachable;
mod cli_webhooks;
mod client;
mod conformance;
mod decl;
mod fake_provider;
mod harness;
mod perf;
mod pg;
mod rate_limits;
mod sandbox;
mod sandbox_people;
mod serve_harness;
mod upgrade;
mod upgrade_schema7;
