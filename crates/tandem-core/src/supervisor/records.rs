//! The supervisor's requests that record what a command did outside it
//! ([`Request::Landed`](crate::protocol::Request::Landed),
//! [`Request::Answered`](crate::protocol::Request::Answered),
//! [`Request::CheckRan`](crate::protocol::Request::CheckRan)), so that no
//! command writes the store itself.

use crate::protocol::Response;
use crate::session::SessionError;
use crate::ship::github::PrStatus;
use crate::store::{Activity, CheckResult, EventKind, MetaUpdate, NewEvent, Store, TaskStatus};

/// `tandem merge` landed a session's work: with `pull`, its pull request
/// is stored as it now is (merged); `text` goes to its history as a
/// `ship` event; the session is marked done.
pub(super) fn landed(
    store: &Store,
    session_id: &str,
    text: String,
    pull: Option<&PrStatus>,
) -> Result<Response, SessionError> {
    let session = super::find(store, session_id)?;
    if let Some(status) = pull {
        store.set_pr(&session.id, status.number, Some(status))?;
    }
    store.add_events(&[NewEvent {
        session_id: &session.id,
        kind: EventKind::Ship,
        text,
        data: None,
        indexed: true,
    }])?;
    store.update_meta(&session.id, &MetaUpdate { status: Some(TaskStatus::Done), ..MetaUpdate::default() })?;
    Ok(Response::Ok)
}

/// `tandem approve` / `deny` answered a session's permission request
/// (`asked`, as the command showed it): recorded as a `permission`
/// event, and the agent is taken as working on until its next report.
pub(super) fn answered(
    store: &Store,
    session_id: &str,
    allow: bool,
    asked: Option<&str>,
) -> Result<Response, SessionError> {
    let session = super::find(store, session_id)?;
    let answer = if allow { "approved" } else { "denied" };
    let text = format!("{answer}: {}", asked.unwrap_or("the request"));
    store.add_events(&[NewEvent {
        session_id: &session.id,
        kind: EventKind::Permission,
        text,
        data: None,
        indexed: true,
    }])?;
    store.set_activity(&session.id, Activity::Running, None)?;
    Ok(Response::Ok)
}

/// `tandem task show` ran a task's check on trial `session_id` at `state`:
/// its result is kept for that state and command.
pub(super) fn check_ran(
    store: &Store,
    session_id: &str,
    state: &str,
    command: &str,
    result: &CheckResult,
) -> Result<Response, SessionError> {
    store.put_check_result(session_id, state, command, result)?;
    Ok(Response::Ok)
}
