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

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = commands::parse();
    init_tracing();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Printing and exit codes by kind: `error.rs`.
            let _ = e.report(&mut std::io::stderr().lock());
            ExitCode::from(e.exit_code())
        }
    }
}

/// A closed stdout or stderr (`tandem archive s | head -1`) ends the
/// command quietly with exit 0, as ripgrep does, instead of the panic
/// `println!` raises on `EPIPE` (issue 17). What the command did before
/// it printed is done; the rest of its output has no reader.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let printing =
            message.starts_with("failed printing to stdout") || message.starts_with("failed printing to stderr");
        if printing && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Logs go to stderr, filtered by `TANDEM_LOG` (default `warn`; the
/// supervisor and hosts run with stderr on their log files).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
