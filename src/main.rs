//! The `kkp` binary: everything happens in [`cli::run`].

mod cli;

// kkp allocates many small JSON values (plans, manifests, journal records); mimalloc serves
// them faster than glibc's allocator and returns memory without long consolidations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
