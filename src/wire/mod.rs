//! The provider protocol as data: the encrypted envelope, request timestamps, endpoint
//! request/response types, error bodies and slugs (see `shared/api/REFERENCE.md`).
//!
//! Shared by `client` and `sandbox`, so both speak exactly the same bytes. This layer must not do
//! I/O: no sockets, no files, no clocks other than through [`timestamp::Clock`].
//!
//! Every [assumed] point of the reference lives in [`assumed`], so it can change in one place.

pub mod assumed;
pub mod body;
pub mod decimal;
pub mod digest;
pub mod envelope;
pub mod error;
pub mod secret;
pub mod timestamp;
pub mod types;
pub mod webhook;

pub use body::{Decoded, decode_response, encode_request};
pub use envelope::{Envelope, EnvelopeError, Key};
pub use error::{ErrorBody, ProviderError, hint_for_slug};
pub use secret::{Secret, Sensitive};
pub use timestamp::{Clock, SystemClock, TimestampSource};
pub use types::*;
