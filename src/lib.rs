//! cardform: infrastructure-as-code for virtual payment cards.
//!
//! Layers, and the only way they may depend on each other (see `README.md`, "Layout"):
//! `wire` (the provider protocol, no I/O) ← `client` (HTTP) and `sandbox` (the built-in provider);
//! `spec` (declarations) and `state` (SQLite, all SQL) feed `plan` (the pure diff); `exec` carries
//! a plan out through `client` and `state` and reports events; `render` turns data into text;
//! `cli` wires them together and owns the exit codes.

pub mod cli;
pub mod client;
pub mod exec;
pub mod plan;
pub mod render;
pub mod sandbox;
pub mod spec;
pub mod state;
pub mod wire;
