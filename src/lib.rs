//! cardform: infrastructure-as-code for virtual payment cards.
//!
//! Layers, and the only way they may depend on each other (see `README.md`, "Layout"):
//! `model` (addresses, keys, labels: the shared vocabulary) is under everything;
//! `wire` (the provider protocol, no I/O) ← `client` (HTTP) and `sandbox` (the built-in provider);
//! `decl` (declarations) and `state` (all SQL, behind one backend seam) feed `plan` (the pure
//! diff); `exec` carries a plan out through `client` and `state` and reports events; `render`
//! turns data into text;
//! `cli` wires them together and owns the exit codes; `serve` (the long-running reconciler)
//! sits beside `cli`'s commands and wires the same layers for a process that never exits.

pub mod cli;
pub mod client;
pub mod decl;
pub mod exec;
pub mod model;
pub mod plan;
pub mod render;
pub mod sandbox;
pub mod serve;
pub mod state;
pub mod wire;
