//! `tandem-host`: a session's host (see `tandem_core::host`), apart from
//! the `tandem` binary so each of the many hosts maps and relocates only
//! the code a host runs. `tandem-host template` is the supervisor's host
//! template, which forks each new host (`tandem_core::host::template`).

use std::process::ExitCode;

use tandem_core::host::template;
use tandem_core::paths::Paths;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    // `TANDEM_LOG` as levels by target (`warn`, `tandem_core=debug`), as
    // `tandem` reads it but without span and field filters: those need
    // `EnvFilter`, whose regular expressions cost the host template
    // 400 KiB of pages it would keep for as long as it serves.
    let filter = std::env::var("TANDEM_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::WARN));
    let _ = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_target(false)
        .finish()
        .with(filter)
        .try_init();
    let paths = match Paths::from_env() {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::args_os().nth(1).is_some_and(|a| a == template::TEMPLATE_ARG) {
        tandem_core::process::limit_malloc_arenas(1);
        return match template::serve(|| host(&paths)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: the host template stopped: {e}");
                ExitCode::FAILURE
            }
        };
    }
    ExitCode::from(u8::try_from(host(&paths)).unwrap_or(1))
}

/// Runs a host on this process's stdin, stdout and stderr: its exit code.
fn host(paths: &Paths) -> i32 {
    match tandem_core::host::main(paths) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", tandem_core::error_chain(&e));
            1
        }
    }
}
