//! The `cardform` binary: everything lives in the library; this only hands over to it.

// mimalloc rather than glibc's malloc: a state card is a dozen small strings, and glibc's 16-byte
// granularity plus a header per chunk cost far more (figures: docs/design/measurements.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Memory freed goes back to the system at once, not after mimalloc's default delay: an
    // apply of a very large fleet reads its files again for each part, and with the delay each
    // pass's buffers arrived before the last pass's were returned, raising the peak for no gain
    // in speed (docs/design/measurements.md, "The allocator").
    // SAFETY: sets a process-wide allocator option before any thread starts; mimalloc documents
    // `mi_option_set` as callable at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    cardform::cli::main()
}

/// `mi_option_purge_delay` in the `mi_option_t` enum of `mimalloc.h`: 15 in both the v2 and v3
/// sources of libmimalloc-sys 0.1.49 (checked against the headers with a C static assert). The
/// crate's bindings name most options but not this one, so its value is pinned here together with
/// the crate's exact version in Cargo.toml: a new mimalloc must be checked again before it is taken.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
