//! Ending a session and undoing it: `rm` ([`remove`], which answers the
//! client itself), `archive`, `restore` and `gc`, each under the
//! repository's lock, the agent stopped first; [`crate::session::end`]
//! does the work.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{self, Response};
use crate::session::{self, SessionError};
use crate::store::{Session, SessionState};

use super::agents::{has_agent, restart_agent, stop_agent};
use super::{State, find, repo_of};

/// `tandem gc`: deletes archived sessions of the repository at `cwd`
/// older than `older_than_secs` ([`session::end::gc`]).
pub(super) fn gc(state: &Arc<State>, cwd: &std::path::Path, older_than_secs: u64) -> Result<Response, SessionError> {
    let store = state.store()?;
    let (repo, config) = session::open_repo(&state.paths, cwd)?;
    let lock = state.repo_lock(&repo.common_dir);
    let guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let older_than = Duration::from_secs(older_than_secs);
    let mut report = session::end::gc(&state.paths, &store, &repo, &config, older_than)?;
    // The checkpoints of a session removed longer ago than the limit go
    // with its snapshot (issue 22); an archived session keeps them.
    let cutoff = crate::unix_now().saturating_sub(i64::try_from(older_than_secs).unwrap_or(i64::MAX));
    if let Some(repo_id) = store.find_repo(&repo.common_dir)? {
        let removed = store.sessions_in(&[SessionState::Removed])?;
        for s in removed.iter().filter(|s| s.repo_id == repo_id && s.updated_at < cutoff) {
            match crate::checkpoints::delete_all(&repo, &store, &s.id) {
                Ok(0) => {}
                Ok(n) => {
                    report.checkpoints.push(format!("{} ({n} checkpoint{})", s.slug, if n == 1 { "" } else { "s" }))
                }
                Err(e) => tracing::warn!(session = %s.slug, error = %crate::error_chain(&e), "cannot drop checkpoints"),
            }
        }
    }
    // The worktree pool: what a killed refill left, and what is beyond
    // `[worktrees] pool` (all of it when the pool is off), goes now.
    let worktrees = session::worktrees_dir(&state.paths, &repo, &config);
    let base = session::pool::pool_base(&repo, &config);
    let size = session::pool::size(&config);
    let tidied = session::pool::tidy(&repo, &worktrees, size, base.as_deref(), &state.pool.busy())?;
    drop(guard);
    super::pool::delete(state, &repo, &tidied.aside);
    if size == 0 {
        session::pool::remove_if_empty(&repo, &worktrees);
    }
    report.pool = tidied.removed;
    super::pool::refill(state, &repo, &config);
    Ok(Response::Collected(report))
}

/// `tandem restore`: an archived session's worktree back
/// ([`session::end::restore`]) and its agent started again; an agent that
/// does not start is a note, not an error.
pub(super) fn restore(
    state: &State,
    session_id: &str,
    env: &[(String, String)],
    rows: u16,
    cols: u16,
) -> Result<Response, SessionError> {
    let store = state.store()?;
    let session = find(&store, session_id)?;
    let (repo, config) = repo_of(state, &store, &session)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // The session's own environment, as at a respawn (issue 19); an env
    // file that cannot be read again leaves the agent stopped, said in a
    // note with how to start it.
    let again = format!("tandem respawn {}", session.slug);
    let resolved = match super::kept_env::resolve(state, &store, &session, env, &Default::default(), &again) {
        Ok(resolved) => Ok(resolved),
        Err(SessionError::Env(e @ crate::session::env::EnvError::Missing { .. })) => Err(e),
        Err(e) => return Err(e),
    };
    // Whatever is at its path now, kept first (issue 22); an archived
    // session has no worktree there, so this is rare.
    if session.path.is_dir()
        && let Err(e) = crate::checkpoints::take(
            &state.paths,
            &repo,
            &store,
            &session,
            crate::checkpoints::Take::of(crate::model::Cause::Restore, config.checkpoints.keep),
        )
    {
        tracing::warn!(session = %session.slug, error = %crate::error_chain(&e), "cannot checkpoint before restore");
    }
    let (session, mut notes) = session::end::restore(&state.paths, &store, &repo, &config, &session, env)?;
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            notes.push(format!("the agent was not started: {e}; start it with `{again} --env-file FILE`"));
            return Ok(Response::Restored { session: Box::new(find(&store, session_id)?), notes });
        }
    };
    notes.extend(resolved.notes.iter().cloned());
    // Its `--env` secrets too, which its row does not hold.
    let mut session = session;
    session.env.clone_from(&resolved.vars);
    match restart_agent(state, &session, &resolved.caller, &resolved.files, (rows, cols), None) {
        Ok(_) => {}
        Err(SessionError::Launch(e)) if e.host_failed() => {
            notes.push(format!("the agent did not start: {}", crate::error_chain(&e)));
        }
        Err(e) => return Err(e),
    }
    Ok(Response::Restored { session: Box::new(find(&store, session_id)?), notes })
}

/// `tandem archive`: stops the agent and archives the session
/// ([`session::end::archive`]).
pub(super) fn archive(state: &State, session_id: &str, env: &[(String, String)]) -> Result<Response, SessionError> {
    let store = state.store()?;
    let session = find(&store, session_id)?;
    if session.state == SessionState::Archived {
        return Err(SessionError::Archived { slug: session.slug });
    }
    let (repo, config) = repo_of(state, &store, &session)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if has_agent(&session) {
        stop_agent(&state.paths, &store, &session, &config)?;
    }
    let session = find(&store, session_id)?;
    session::sync_sandboxed(&state.paths, &repo, &session);
    let (session, notes) = session::end::archive(&state.paths, &store, &repo, &config, &session, env)?;
    state.facts.forget(&session.id);
    Ok(Response::Archived { session: Box::new(session), notes })
}

/// What `rm` asked for.
pub(super) struct Removal {
    pub(super) cwd: PathBuf,
    pub(super) name: String,
    pub(super) force: bool,
    pub(super) wait: bool,
    pub(super) purge: bool,
    pub(super) env: Vec<(String, String)>,
}

/// Removes a session and answers `stream` itself: as soon as the
/// worktree is in the trash and the row is marked, then it finishes
/// git's bookkeeping ([`session::end::finish_remove`]) still holding the
/// repository's lock, so no other request on the repository can run in
/// between (with `wait`, it answers after that). Errors come before any
/// answer, and are the caller's to send.
pub(super) fn remove(state: &Arc<State>, req: &Removal, stream: &mut UnixStream) -> Result<(), SessionError> {
    let store = state.store()?;
    let session = session::lookup::resolve(&store, &req.cwd, Some(&req.name))?;
    let (repo, config) = repo_of(state, &store, &session)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Refuse before touching the agent, so a refused rm changes nothing;
    // check again once the agent can no longer write. The caches answer
    // without `git status` or `git rev-list` when they can.
    let unsaved = |s: &Session| {
        // A sandboxed agent's commits are in its private repository
        // until read back.
        session::sync_sandboxed(&state.paths, &repo, s);
        let counts = state.facts.fresh_worktree(s).map(|w| (w.changed, w.untracked));
        let tip = state.facts.branch_tip(&repo, &s.branch);
        session::unsaved_work_given(&repo, s, counts, tip.as_deref())
    };
    let mut found = unsaved(&session)?;
    if !req.force
        && let Some(what) = found
    {
        return Err(SessionError::WouldLoseWork { slug: session.slug, what });
    }
    if has_agent(&session) {
        stop_agent(&state.paths, &store, &session, &config)?;
        found = unsaved(&session)?;
    }
    let (report, notes) =
        session::end::remove(&state.paths, &store, &repo, &config, &session, req.force, &req.env, Some(found))?;
    state.facts.forget(&session.id);
    if req.purge {
        store.delete_events(&session.id)?;
    }
    let mut answer = Some(Response::Removed { report, notes });
    let mut send = |answer: &mut Option<Response>| {
        if let Some(response) = answer.take()
            && let Err(e) = protocol::send(stream, &response)
        {
            tracing::debug!(error = %e, "the client left before the answer to rm");
        }
    };
    if !req.wait {
        send(&mut answer);
    }
    if let Err(e) = session::end::finish_remove(&repo, &store, &session) {
        tracing::warn!(session = %session.slug, error = %e, "finishing the removal failed");
        if let Some(Response::Removed { notes, .. }) = &mut answer {
            notes.push(format!("git's bookkeeping did not finish: {e}; `tandem doctor` explains"));
        }
    }
    send(&mut answer);
    Ok(())
}
