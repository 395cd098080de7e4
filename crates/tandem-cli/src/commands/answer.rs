//! `tandem approve` and `tandem deny`: answer the permission question a
//! session's agent is waiting on.
//!
//! Claude Code in its TUI shows its own permission dialog; its hooks tell
//! tandem the session is `needs-input` and what it asks. Approving presses
//! Enter on the dialog's first choice ("Yes"); denying presses Esc ("No")
//! and then, with `--message`, sends the message as the next prompt.
//! `claude-structured` gets its control response (`allow`, or `deny` with
//! the message) from its host.

use tandem_core::host::client;
use tandem_core::protocol::{ClientMsg, Request};
use tandem_core::session::facts::live_state;
use tandem_core::store::{Activity, Session, SessionState};

use crate::context::Context;
use crate::error::CliError;

/// Allow what a session's agent asks permission for
#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    /// The session's name
    name: String,
}

/// Refuse what a session's agent asks permission for
#[derive(clap::Args, Debug)]
pub struct DenyArgs {
    /// The session's name
    name: String,
    /// Tell the agent why, or what to do instead (sent as the next prompt)
    #[arg(short, long)]
    message: Option<String>,
}

pub fn approve(cx: &Context, args: &ApproveArgs) -> Result<(), CliError> {
    let session = waiting(cx, &args.name)?;
    let msg = ClientMsg::Answer { allow: true, message: None };
    client::tell(&cx.paths, &session, &msg).map_err(|_| super::send::not_running(&session.slug))?;
    record(cx, &session, true)
}

pub fn deny(cx: &Context, args: &DenyArgs) -> Result<(), CliError> {
    let session = waiting(cx, &args.name)?;
    let message = args.message.as_deref().filter(|m| !m.trim().is_empty()).map(|m| m.replace(['\r', '\n'], " "));
    let msg = ClientMsg::Answer { allow: false, message };
    client::tell(&cx.paths, &session, &msg).map_err(|_| super::send::not_running(&session.slug))?;
    record(cx, &session, false)
}

/// The session, if its agent waits for a permission decision.
fn waiting(cx: &Context, name: &str) -> Result<Session, CliError> {
    let (_, _, session) = cx.session(name)?;
    if live_state(&session) != SessionState::Running {
        return Err(super::send::not_running(&session.slug));
    }
    if !tandem_core::agent::reports_state(&session.agent) {
        return Err(CliError::user(format!(
            "session `{}` runs `{}`, which does not report permission requests; attach to it to answer",
            session.slug, session.agent
        )));
    }
    if session.activity != Some(Activity::NeedsInput) {
        return Err(CliError::user(format!(
            "session `{}` is not waiting for a permission decision; `tandem list` shows what each session waits for",
            session.slug
        )));
    }
    Ok(session)
}

/// Has the supervisor record the answer in the session's history and
/// take the agent as working on until its next hook says otherwise.
fn record(cx: &Context, session: &Session, allow: bool) -> Result<(), CliError> {
    let request = Request::Answered { session_id: session.id.clone(), allow, asked: session.asking.clone() };
    cx.supervisor()?.request(&request)?;
    Ok(())
}
