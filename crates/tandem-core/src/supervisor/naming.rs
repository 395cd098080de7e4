//! Naming a session from its first prompt: the agent is asked for a
//! title in a thread of its own ([`spawn_auto_name`]), then the title is
//! recorded and the branch renamed under the repository's lock
//! ([`crate::session::auto_name`] does the work).

use std::sync::Arc;
use std::thread;

use crate::protocol::Response;
use crate::session::{self, SessionError};

use super::{State, find, repo_of};

/// Runs [`auto_name`] in a thread of its own: the one-shot call to the
/// agent can take a while, and nobody waits for it.
pub(super) fn spawn_auto_name(
    state: &Arc<State>,
    session_id: String,
    prompt: String,
    env: Vec<(String, String)>,
) -> std::io::Result<()> {
    let state = Arc::clone(state);
    thread::Builder::new().name("auto-name".into()).spawn(move || {
        if let Err(e) = auto_name(&state, &session_id, &prompt, &env) {
            tracing::warn!(session = %session_id, error = %e, "naming the session failed");
        }
    })?;
    Ok(())
}

/// Asks for a title from the first prompt, then, under the repository's
/// lock, records it and renames the branch ([`crate::session::auto_name`]).
fn auto_name(state: &State, session_id: &str, prompt: &str, env: &[(String, String)]) -> Result<(), SessionError> {
    let (session, repo, config) = {
        let store = state.store()?;
        let session = find(&store, session_id)?;
        let (repo, config) = repo_of(state, &store, &session)?;
        // A naming command the repository set runs only once approved.
        let config = session::repo_hooks::approved_config(&store, &repo, &config)?;
        (session, repo, config)
    };
    if !session.auto_named || !config.naming.auto {
        return Ok(());
    }
    let title = session::auto_name::suggest_title(&session, &config, env, prompt);
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let store = state.store()?;
    let session = find(&store, session_id)?;
    if !session.auto_named {
        return Ok(());
    }
    let Some(title) = title else {
        // It keeps its adjective-noun name; no asking again.
        store.clear_auto_named(&session.id)?;
        return Ok(());
    };
    let prefix = session::branch_prefix(&repo, &config, env)?;
    // A sandboxed agent's branch is in its private repository too: read
    // it back first, and give it the new name there after.
    session::sync_sandboxed(&state.paths, &repo, &session);
    let renamed = session::auto_name::apply(&store, &repo, &config, &session, &prefix, &title)?;
    if renamed.is_some() {
        session::sync_sandboxed(&state.paths, &repo, &find(&store, session_id)?);
    }
    let text = match &renamed {
        Some(branch) => format!("named \"{title}\" (branch {branch})"),
        None => format!("named \"{title}\""),
    };
    store.add_events(&[crate::store::NewEvent {
        session_id: &session.id,
        kind: crate::store::EventKind::State,
        text,
        data: None,
        indexed: true,
    }])?;
    Ok(())
}

/// `tandem rename`: under the repository's lock, renames the session
/// ([`session::rename::rename`]); its folder stays while its agent runs.
pub(super) fn rename(state: &State, session_id: &str, name: &str, branch: bool) -> Result<Response, SessionError> {
    let store = state.store()?;
    let session = find(&store, session_id)?;
    let (repo, config) = repo_of(state, &store, &session)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let session = find(&store, session_id)?;
    // A sandboxed agent's branch is in its private repository too: read
    // it back first, and give it the new name there after.
    session::sync_sandboxed(&state.paths, &repo, &session);
    let runs = super::agents::has_agent(&session);
    let (session, notes) = session::rename::rename(&store, &repo, &config, &session, name, branch, runs)?;
    session::sync_sandboxed(&state.paths, &repo, &session);
    state.facts.forget(&session.id);
    Ok(Response::Renamed { session: Box::new(session), notes })
}
