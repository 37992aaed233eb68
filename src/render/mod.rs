//! render
pub mod diagnostics;
