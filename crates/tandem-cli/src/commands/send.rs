use crate::context::Context;
use crate::error::CliError;

/// Send a prompt to a session's agent, as if typed and Enter pressed
///
/// An agent in the middle of a turn gets it when it next reads input
/// (Claude Code queues it and runs it after the turn).
///
/// With one argument, it is the prompt, for the session whose worktree
/// this is.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// The prompt
    text: Option<String>,
}

pub fn run(cx: &Context, args: &SendArgs) -> Result<(), CliError> {
    let (name, text) = match (&args.name, &args.text) {
        (Some(name), Some(text)) => (Some(name.as_str()), text.as_str()),
        (Some(text), None) => (None, text.as_str()),
        _ => (None, ""),
    };
    if text.trim().is_empty() {
        return Err(tandem_core::client::ClientError::EmptyPrompt.into());
    }
    let (_, _, session) = cx.named(name)?;
    cx.tandem()?.send(&session, text, crate::context::agent_env())?;
    Ok(())
}
