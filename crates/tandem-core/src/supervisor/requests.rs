//! The supervisor's requests: [`handle`] is the dispatch table, one arm
//! per [`Request`], each one call into the file that does that job;
//! the few requests too small for a file of their own are at the end.

use std::path::Path;
use std::sync::Arc;

use crate::protocol::{PROTOCOL_VERSION, Request, Response};
use crate::session::{self, SessionError};

use super::{State, agents, changes, conflicts, create, end, fork, list, naming, records, tasks};

/// Answers one request (all but [`Request::Remove`], which
/// [`end::remove`] answers itself). Errors keep their kind and hints:
/// the server sends them as [`Response::Error`].
pub(super) fn handle(state: &Arc<State>, request: Request) -> Result<Response, SessionError> {
    match request {
        Request::Hello { .. } => Ok(Response::Hello { version: PROTOCOL_VERSION, pid: std::process::id() }),
        Request::Create(req) => create::create(state, &req),
        Request::Stop { session_id } => agents::stop(state, &session_id),
        Request::Remove { .. } => unreachable!("serve answers remove itself"),
        Request::Archive { session_id, env } => end::archive(state, &session_id, &env),
        Request::Restore { session_id, env, rows, cols } => end::restore(state, &session_id, &env, rows, cols),
        Request::Changes { generation } => changes::wait(state, generation),
        Request::AutoName { session_id, prompt, env } => auto_name(state, session_id, prompt, env),
        Request::Fork { session_id, name, env, rows, cols, choice } => {
            fork::fork(state, &session_id, name, env, &choice, rows, cols)
        }
        Request::Conflicts { cwd, fresh, foreign } => conflicts::request(state, &cwd, fresh, &foreign),
        Request::WatchPull { session_id, api_url, token } => watch_pull(state, &session_id, api_url, token),
        Request::Review { session_id, agent, name, env, rows, cols } => {
            fork::review(state, &session_id, agent, name, env, rows, cols)
        }
        Request::Respawn { session_id, env, rows, cols, choice, wake, resume_at } => {
            agents::respawn(state, &session_id, &env, &choice, (rows, cols), wake, resume_at.as_deref())
        }
        Request::Gc { cwd, older_than_secs } => end::gc(state, &cwd, older_than_secs),
        Request::Doctor { cwd, fix } => doctor(state, &cwd, fix),
        Request::List { cwd, archived, messages } => list::list(state, &cwd, archived, messages),
        Request::ListText { cwd, view } => list::list_text(state, &cwd, &view),
        Request::Tally { cwd, env } => list::tally(state, cwd.as_deref(), &env),
        Request::Status => status(state),
        Request::Shutdown => Ok(Response::Ok),
        Request::TaskNew(req) => tasks::new(state, &req),
        Request::TaskPromote { cwd, task, trial, env } => tasks::promote(state, &cwd, &task, &trial, &env),
        Request::TaskSetStatus { cwd, task, status } => tasks::set_status(state, &cwd, &task, status),
        Request::Rename { session_id, name, branch } => naming::rename(state, &session_id, &name, branch),
        Request::Landed { session_id, text, pull } => {
            records::landed(&*state.store()?, &session_id, text, pull.as_ref())
        }
        Request::Answered { session_id, allow, asked } => {
            records::answered(&*state.store()?, &session_id, allow, asked.as_deref())
        }
        Request::CheckRan { session_id, state: at, command, result } => {
            records::check_ran(&*state.store()?, &session_id, &at, &command, &result)
        }
    }
}

/// [`Request::AutoName`]: names the session in the background
/// ([`naming::spawn_auto_name`]); answers at once.
fn auto_name(
    state: &Arc<State>,
    session_id: String,
    prompt: String,
    env: Vec<(String, String)>,
) -> Result<Response, SessionError> {
    naming::spawn_auto_name(state, session_id, prompt, env)?;
    Ok(Response::Ok)
}

/// [`Request::WatchPull`]: what the pull request watcher needs to poll
/// the session's pull request.
fn watch_pull(state: &State, session_id: &str, api_url: String, token: String) -> Result<Response, SessionError> {
    state.pulls.learn(session_id, api_url, token);
    Ok(Response::Ok)
}

/// `tandem doctor`: findings for the repository at `cwd`, fixed when
/// `fix`, under its lock ([`session::repair::doctor`]).
fn doctor(state: &State, cwd: &Path, fix: bool) -> Result<Response, SessionError> {
    let store = state.store()?;
    let repo = crate::repo::Repository::discover(cwd)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut findings = session::repair::doctor(&state.paths, &store, &repo, fix)?;
    let (_, config) = session::open_repo(&state.paths, &repo.root)?;
    let worktrees = session::worktrees_dir(&state.paths, &repo, &config);
    findings.extend(session::pool::doctor(&repo, &worktrees, &state.pool.busy(), fix)?);
    Ok(Response::Doctor { findings })
}

/// `tandem daemon status`: this supervisor's pid, start time, how many
/// hosts are alive, and its watch budget.
fn status(state: &State) -> Result<Response, SessionError> {
    let store = state.store()?;
    let hosts =
        store.sessions_with_hosts()?.iter().filter(|s| s.host_pid.is_some_and(crate::process::is_alive)).count();
    Ok(Response::Status { pid: std::process::id(), started_at: state.started_at, hosts, watches: state.facts.report() })
}
