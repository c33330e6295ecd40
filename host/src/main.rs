//! The `carrel` binary: logging, the file-creation mask, and the subcommands of [`cli`].

mod cli;

use clap::Parser;
use std::process::ExitCode;

// hyper, tokio and wasmtime allocate and free many small objects per request: glibc's
// malloc took ~7% of a WASIp3 hello request. With mimalloc (and one component lookup per
// request) the WASIp3 ratio to `wasmtime serve` went from ~0.91x to ~0.95x (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CARREL_LOG")
                .unwrap_or_else(|_| "carrel=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: in files and the journal they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = cli::Cli::parse();
    if !matches!(cli.command, cli::Command::Build(_)) {
        // Whatever this command creates (catalog, journals, key-value stores, segments,
        // caches, locks) is readable by the operator only: the state directory holds keys
        // and health data. `carrel build` writes the user's build outputs and keeps theirs.
        // SAFETY: umask only changes the process's file-creation mask; it is called before
        // any thread is started.
        unsafe {
            libc::umask(0o077);
        }
    }
    cli::run(cli.command)
}
