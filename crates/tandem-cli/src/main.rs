//! `tandem`: run many AI coding agents at once, each in its own git
//! worktree, under a per-user supervisor. This binary is the CLI
//! (`tandem …`), the supervisor (`tandem daemon run`) and the session host
//! (`tandem host`); the logic lives in `tandem-core`.

mod commands;
mod context;
mod error;
mod terminal;
mod view;

use std::process::ExitCode;

use clap::Parser;

use crate::error::CliError;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    init_tracing();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            // An error may quote a repository's or an agent's text.
            eprintln!("error: {}", tandem_core::text::visible(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs go to stderr, filtered by `TANDEM_LOG` (default `warn`; the
/// supervisor and hosts run with stderr on their log files).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
