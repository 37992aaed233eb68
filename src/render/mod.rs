//! Output: human, JSON and markdown renderings of plans, progress, diagnostics and state.
//! Everything here turns data into text; nothing here decides what to do.

pub mod diagnostics;
pub mod plan;
pub mod progress;
pub mod safe;
pub mod state;
pub mod style;

pub use safe::safe;
pub use style::Style;
