//! The `deed` command line. It parses arguments, resolves the manifest and
//! database URL, calls into the library crates, and maps outcomes to exit
//! codes: 0 all is well, 1 findings, 2 deed could not do its job.

mod cli;
mod commands;
mod context;
mod exit;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The relay runs on one thread: its stages (reading the stream,
    // writing events, waiting for acks) take turns on it instead of waking
    // each other across threads, which costs more CPU than the work itself
    // and leaves the other core to the database and the broker.
    let mut builder = match cli.command {
        cli::Command::Relay(_) => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return exit::report(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code.into(),
        Err(e) => exit::report(e),
    }
}
