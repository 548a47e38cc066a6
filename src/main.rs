//! nta7516-milter binary: everything lives in the library; see `cli::main`.

#![forbid(unsafe_code)]

/// mimalloc instead of glibc malloc: the verdict cache holds many small allocations per
/// domain, and glibc's per-chunk overhead made 100,000 cached domains cost ~128 MiB
/// (benches/verdict_cache.rs measures it with this allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    nta7516_milter::cli::main()
}
