use tandem_core::agent::Kind;
use tandem_core::host::client;
use tandem_core::protocol::Request;
use tandem_core::session::facts::live_state;
use tandem_core::store::SessionState;

use crate::context::Context;
use crate::error::CliError;

/// Send a prompt to a session's agent, as if typed and Enter pressed
///
/// An agent in the middle of a turn gets it when it next reads input
/// (Claude Code queues it and runs it after the turn).
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The session's name
    name: String,
    /// The prompt
    text: String,
}

pub fn run(cx: &Context, args: &SendArgs) -> Result<(), CliError> {
    if args.text.trim().is_empty() {
        return Err(CliError::user("the prompt is empty; give the text to send"));
    }
    let (_, _, session) = cx.session(&args.name)?;
    if live_state(&session) != SessionState::Running {
        return Err(not_running(&session.slug));
    }
    // One line: a newline would press Enter before the end.
    let text = args.text.replace(['\r', '\n'], " ");
    client::prompt(&cx.paths, &cx.store()?, &session, &text).map_err(|e| match e {
        client::PromptError::Store(e) => CliError::from(e),
        client::PromptError::NoHost(_) => not_running(&session.slug),
    })?;
    if session.auto_named && Kind::of(&session.agent).structured() {
        // The first prompt of a session tandem named (Claude's TUI asks
        // from its hook): a title, in the background.
        let request =
            Request::AutoName { session_id: session.id.clone(), prompt: text, env: crate::context::agent_env() };
        cx.supervisor()?.request(&request)?;
    }
    Ok(())
}

pub fn not_running(slug: &str) -> CliError {
    CliError::user(format!("session `{slug}` has no running agent; start it again with `tandem respawn {slug}`"))
}
