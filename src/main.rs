//! The `cardform` binary: everything lives in the library; this only hands over to it.

// mimalloc rather than glibc's malloc: a state card is a dozen small strings, and glibc's 16-byte
// granularity plus its per-chunk header made a million-card `plan` peak well over 1 GB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cardform::cli::main()
}
