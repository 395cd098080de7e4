//! Stopping and starting a session's agent: `tandem stop` and
//! `respawn`, and the helpers `rm`, `archive`, `restore` and the reaper
//! share ([`stop_agent`], [`restart_agent`], [`launcher`]).

use std::time::Duration;

use crate::config::Config;
use crate::host;
use crate::paths::Paths;
use crate::protocol::{EnvChoice, EnvFile, Response};
use crate::repo::Repository;
use crate::session::SessionError;
use crate::session::launch::{Launch, Launcher};
use crate::store::{Session, SessionState, Store};

use super::{State, find, find_with_worktree, kept_env, repo_of};

/// `tandem respawn`: stops the agent if it runs, and starts it again in
/// its worktree ([`restart_agent`]) with the session's environment, not
/// the caller's `env` (issue 19), unless `choice` says otherwise
/// ([`kept_env::resolve`]). A missing env file fails before the agent is
/// stopped. With `wake`, only a session the
/// reaper stopped for idleness starts again; any other is answered as it
/// is (`resumed` false), so two clients waking it at once start one agent.
pub(super) fn respawn(
    state: &State,
    session_id: &str,
    env: &[(String, String)],
    choice: &EnvChoice,
    (rows, cols): (u16, u16),
    wake: bool,
    resume_at: Option<&str>,
) -> Result<Response, SessionError> {
    let store = state.store()?;
    let session = find_with_worktree(&store, session_id)?;
    let (repo, config) = repo_of(state, &store, &session)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let session = find(&store, session_id)?;
    if wake && crate::session::idle_stop::idle_stopped(&state.paths, &session).is_none() {
        return Ok(Response::Respawned { session: Box::new(session), resumed: false, notes: Vec::new() });
    }
    let again = format!("tandem respawn {}", session.slug);
    let resolved = kept_env::resolve(state, &store, &session, env, choice, &again)?;
    if has_agent(&session) {
        stop_agent(&state.paths, &store, &session, &config)?;
    }
    kept_env::remember(state, &store, &session, &resolved)?;
    let mut session = find(&store, session_id)?;
    // Its `--env` secrets too, which its row does not hold.
    session.env.clone_from(&resolved.vars);
    let resumed = restart_agent(state, &session, &resolved.caller, &resolved.files, (rows, cols), resume_at)?;
    Ok(Response::Respawned { session: Box::new(find(&store, session_id)?), resumed, notes: resolved.notes })
}

/// `tandem stop`: stops the agent ([`stop_agent`]), even when its
/// repository is gone or broken.
pub(super) fn stop(state: &State, session_id: &str) -> Result<Response, SessionError> {
    let store = state.store()?;
    let session = find(&store, session_id)?;
    // A moved or broken repository must not keep an agent running.
    let config = repo_of(state, &store, &session).map(|(_, c)| c).unwrap_or_else(|_| Config::defaults());
    stop_agent(&state.paths, &store, &session, &config)?;
    // Stopped by the user: it stays stopped until asked to start.
    crate::session::idle_stop::clear(&state.paths, session_id);
    Ok(Response::Stopped { session: Box::new(find(&store, session_id)?) })
}

/// Whether a session may have an agent process to stop first.
pub(super) fn has_agent(session: &Session) -> bool {
    matches!(session.state, SessionState::Running | SessionState::Creating | SessionState::Lost)
}

/// Stops a session's agent (polite signals, `stop.grace_ms`, SIGKILL) and
/// records how it ended, unless its host already did: a host that answers
/// records the end itself; without one, we do. A store that cannot be
/// written fails first, with the agent left running: `rm`, `archive` and
/// `respawn` must change nothing when they cannot finish (issue 17).
pub(super) fn stop_agent(paths: &Paths, store: &Store, session: &Session, config: &Config) -> Result<(), SessionError> {
    store.check_writable()?;
    let end = host::client::stop(paths, session, Duration::from_millis(config.stop.grace_ms))?;
    let still_live =
        |s: &Session| matches!(s.state, SessionState::Running | SessionState::Creating | SessionState::Lost);
    if store.session(&session.id)?.is_some_and(|s| still_live(&s)) {
        store.set_state(&session.id, end, None)?;
    }
    Ok(())
}

/// Starts `session`'s agent again in its worktree ([`Launch::again`])
/// with `env` as its caller layer and its env files' values `files`
/// ([`kept_env::resolve`]), without the first prompt (it is in the conversation already, or was
/// the user's to repeat); with `resume_at`, the conversation only up to
/// that message. Returns whether it resumed its conversation.
///
/// # Errors
/// [`SessionError::Agent`] when its command is not found any more;
/// [`SessionError::Launch`] when the agent does not start.
pub(super) fn restart_agent(
    state: &State,
    session: &Session,
    env: &[(String, String)],
    files: &[EnvFile],
    (rows, cols): (u16, u16),
    resume_at: Option<&str>,
) -> Result<bool, SessionError> {
    let again = Launch { resume_at, ..Launch::again(session, env, files, rows, cols)? };
    crate::session::idle_stop::clear(&state.paths, &session.id);
    let store = state.store()?;
    let (repo, config) = repo_of(state, &store, session)?;
    Ok(launcher(state, &store, &repo, &config).start(session, again)?.resumed)
}

/// The [`Launcher`] of this supervisor's hosts for a session of `repo`.
pub(super) fn launcher<'a>(
    state: &'a State,
    store: &'a Store,
    repo: &'a Repository,
    config: &'a Config,
) -> Launcher<'a> {
    Launcher { paths: &state.paths, exe: &state.exe, store, repo, config }
}
