use std::io::Write;

use tandem_core::protocol::{Request, Response};
use tandem_core::store::SessionState;

use crate::context::Context;
use crate::error::CliError;

/// Stop a session's agent (its whole process group); the worktree stays
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// The session's name
    name: String,
}

pub fn run(cx: &Context, args: &StopArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.session(&args.name)?;
    let mut out = std::io::stdout().lock();
    if tandem_core::session::facts::live_state(&session) != SessionState::Running {
        let state = crate::commands::list::state_text(&session);
        writeln!(out, "session {} is not running ({})", session.slug, tandem_core::text::visible(&state))?;
        return Ok(());
    }
    if let Response::Stopped { session } =
        cx.supervisor()?.request(&Request::Stop { session_id: session.id.clone() })?
    {
        writeln!(out, "stopped session {}; its worktree stays at {}", session.slug, session.path.display())?;
    }
    Ok(())
}
