mod cli_apply;
mod cli_plan;
mod client;
mod fake_provider;
mod harness;
mod sandbox;
mod spec;
mod state;
