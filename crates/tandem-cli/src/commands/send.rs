use std::io::Write;

use crate::context::Context;
use crate::error::CliError;

/// Send a prompt to a session's agent, as if typed and Enter pressed
///
/// An agent in the middle of a turn gets it when it next reads input
/// (Claude Code queues it and runs it after the turn). A session the
/// supervisor stopped for idleness is started again first, resuming its
/// conversation.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The session's name
    name: String,
    /// The prompt
    text: String,
}

pub fn run(cx: &Context, args: &SendArgs) -> Result<(), CliError> {
    if args.text.trim().is_empty() {
        return Err(tandem_core::client::ClientError::EmptyPrompt.into());
    }
    let (_, _, session) = cx.session(&args.name)?;
    let session = crate::commands::attach::wake(cx, &session)?;
    cx.tandem()?.send(&session, &args.text, crate::context::agent_env())?;
    // Confirmed as `stop` confirms (issue 19).
    let words = args.text.split_whitespace().count();
    writeln!(std::io::stdout().lock(), "sent a prompt of {words} word(s) to session {}", session.slug)?;
    Ok(())
}
