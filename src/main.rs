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
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    cardform::cli::main()
}

// The one mimalloc option set here, declared directly: the function is in the allocator linked
// above, and the Rust bindings that name it would add a crate for one call.
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in the `mi_option_t` enum of `mimalloc.h` (15 in both v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
