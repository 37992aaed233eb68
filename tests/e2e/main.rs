mod cli_apply;
mod cli_plan;
mod harness;
