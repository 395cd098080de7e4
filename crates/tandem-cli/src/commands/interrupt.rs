use tandem_core::host::client;
use tandem_core::session::facts::live_state;
use tandem_core::store::SessionState;

use crate::context::Context;
use crate::error::CliError;

/// Interrupt the agent's current turn; it stays running
///
/// Claude Code gets Esc (it ends the turn and waits for a prompt); any
/// other agent gets Ctrl-C.
#[derive(clap::Args, Debug)]
pub struct InterruptArgs {
    /// The session's name
    name: String,
}

pub fn run(cx: &Context, args: &InterruptArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.session(&args.name)?;
    if live_state(&session) != SessionState::Running {
        return Err(super::send::not_running(&session.slug));
    }
    let key = if session.agent == "claude" { "\x1b" } else { "\x03" };
    client::type_text(&cx.paths, &session, key, false).map_err(|_| super::send::not_running(&session.slug))?;
    Ok(())
}
