use std::io::Write;

use tandem_core::client::Stopped;

use crate::context::Context;
use crate::error::CliError;

/// Stop a session's agent (its whole process group); the worktree stays
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &StopArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let mut out = std::io::stdout().lock();
    match cx.tandem()?.stop(&session)? {
        Stopped::NotRunning(state) => {
            writeln!(out, "session {} is not running ({})", session.slug, tandem_core::text::visible(&state))?;
        }
        Stopped::Stopped(session) => {
            writeln!(out, "stopped session {}; its worktree stays at {}", session.slug, session.path.display())?;
        }
    }
    Ok(())
}
