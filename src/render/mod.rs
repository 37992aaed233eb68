//! Output: human, JSON and markdown renderings of plans, progress and state. Everything here turns
//! data into text; nothing here decides what to do or touches I/O beyond the writer it is given.

pub mod plan;
pub mod progress;
pub mod style;

pub use style::Style;
