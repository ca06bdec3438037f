//! The `kkp` binary: everything happens in [`cli::run`].

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
