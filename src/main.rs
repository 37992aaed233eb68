//! The `cardform` binary: everything lives in the library; this only hands over to it.

// mimalloc rather than glibc's malloc: a state card is a dozen small strings, and glibc's 16-byte
// granularity plus its per-chunk header made a million-card `plan` peak well over 1 GB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Memory freed goes back to the system at once, not after mimalloc's default delay: an
    // apply of a very large fleet reads its files again for each part, and with the delay each
    // pass's buffers arrived before the last pass's were returned (a million cards peaked at
    // 187 MiB instead of 124 while each pass read the whole text; 10,000 at 62 instead of 51).
    // No slower here (a million-card `plan`: 1.5–1.8 s either way).
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
