//! `tandem-host`: a session's host (see `tandem_core::host`), apart from
//! the `tandem` binary so each of the many hosts maps and relocates only
//! the code a host runs.

use std::process::ExitCode;

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
    let paths = match tandem_core::paths::Paths::from_env() {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match tandem_core::host::main(&paths) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", tandem_core::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
