//! Sessions made from another one: a fork (its state, its conversation
//! when the agent can fork one) and a review (its work, read by an agent
//! in a read-only checkout). Each builds a [`CreateRequest`] under the
//! repository's lock and hands it to [`create`].

use std::sync::Arc;

use crate::git;
use crate::protocol::{CreateRequest, EnvChoice, Response};
use crate::repo::Repository;
use crate::session::{self, SessionError};
use crate::store::{Session, Store};

use super::create::create;
use super::{State, find_with_worktree, kept_env, repo_of};

/// `tandem review`: a new session reviewing `session_id`'s work
/// ([`review_request`]).
pub(super) fn review(
    state: &Arc<State>,
    session_id: &str,
    agent: Option<String>,
    name: Option<String>,
    env: Vec<(String, String)>,
    rows: u16,
    cols: u16,
) -> Result<Response, SessionError> {
    let request = review_request(state, session_id, agent, name, env, rows, cols)?;
    create(state, &request)
}

/// `tandem fork`: a new session at `session_id`'s state (its uncommitted
/// changes too, as an overlay), with its agent, title and environment
/// (the source's, not the caller's `env`, unless `choice` says otherwise:
/// [`kept_env::resolve`]), and its conversation when the agent can fork
/// one.
pub(super) fn fork(
    state: &Arc<State>,
    session_id: &str,
    name: Option<String>,
    env: Vec<(String, String)>,
    choice: &EnvChoice,
    rows: u16,
    cols: u16,
) -> Result<Response, SessionError> {
    let mut notes = Vec::new();
    let request = {
        let store = state.store()?;
        let source = find_with_worktree(&store, session_id)?;
        let (repo, _) = repo_of(state, &store, &source)?;
        let lock = state.repo_lock(&repo.common_dir);
        let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let again = format!("tandem fork {}", source.slug);
        let resolved = kept_env::resolve(state, &store, &source, &env, choice, &again)?;
        notes.clone_from(&resolved.notes);
        session::sync_sandboxed(&state.paths, &repo, &source);
        let head = git::resolve_commit(&source.path, "HEAD")?
            .ok_or_else(|| SessionError::NotFound { name: source.slug.clone() })?;
        let dirty = git::status(&source.path).is_ok_and(|s| s.is_dirty());
        let overlay = if dirty { Some(session::snapshot(&state.paths, &repo, &source)?) } else { None };
        let name = match name {
            Some(name) => name,
            None => free_name(&store, &repo, &source, "fork")?,
        };
        CreateRequest {
            cwd: repo.root.clone(),
            name: Some(name),
            title: source.meta.title.as_ref().map(|t| format!("{t} (fork)")),
            agent: Some(source.agent.clone()),
            prompt: None,
            base: Some(head),
            branch: None,
            from_pr: None,
            env: resolved.caller.clone(),
            rows,
            cols,
            fork_of: source.agent_session.clone().filter(|_| crate::agent::reports_state(&source.agent)),
            overlay,
            review_of: None,
            task: None,
            env_files: resolved.file_paths(),
            env_file_vars: resolved.files,
            vars: resolved.vars,
            sandbox: Some(sandbox_name(source.sandbox)),
            // A fork of a sub-session stays with its creator.
            creator: source.creator.clone(),
        }
    };
    match create(state, &request)? {
        Response::Created { session, notes: mut created } => {
            created.extend(notes);
            Ok(Response::Created { session, notes: created })
        }
        other => Ok(other),
    }
}

/// What a review of `session_id` creates ([`crate::ship::review`]): a
/// session named `<slug>-review` (or `name`) at the reviewed state, with
/// the review prompt, whose agent takes prompts. Its start commit is
/// kept under `refs/tandem/review/<id>` by [`create`].
fn review_request(
    state: &State,
    session_id: &str,
    agent: Option<String>,
    name: Option<String>,
    env: Vec<(String, String)>,
    rows: u16,
    cols: u16,
) -> Result<CreateRequest, SessionError> {
    let store = state.store()?;
    let source = find_with_worktree(&store, session_id)?;
    let (repo, _) = repo_of(state, &store, &source)?;
    // The reviewed session's own agent when it takes prompts, else the
    // default one (Claude Code when installed).
    let agent = agent.or_else(|| crate::agent::can_review(&source.agent).then(|| source.agent.clone()));
    let spec = crate::agent::resolve(agent.as_deref(), Some("review"), &env, &repo.root)?;
    if spec.name == "shell" {
        return Err(SessionError::ReviewNeedsAgent);
    }
    // Codex can fence itself: its sandbox then refuses every write.
    let agent = crate::agent::review_line(&spec.name);
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let name = match name {
        Some(name) => name,
        None => free_name(&store, &repo, &source, "review")?,
    };
    let start = crate::ship::review::start_commit(&source, &state.paths.state_dir)?;
    let prompt = crate::ship::review::prompt(&store, &source, &start).map_err(|e| match e {
        crate::ship::review::ReviewError::Git(e) => SessionError::Git(e),
        crate::ship::review::ReviewError::Store(e) => SessionError::Store(e),
    })?;
    let title = format!("Review of {}", source.meta.title.as_deref().unwrap_or(&source.slug));
    Ok(CreateRequest {
        cwd: repo.root.clone(),
        name: Some(name),
        title: Some(title),
        agent: Some(agent),
        prompt: Some(prompt),
        base: Some(start),
        branch: None,
        from_pr: None,
        env,
        rows,
        cols,
        fork_of: None,
        overlay: None,
        review_of: Some(source.id),
        task: None,
        vars: Vec::new(),
        env_files: Vec::new(),
        env_file_vars: Vec::new(),
        sandbox: Some(sandbox_name(source.sandbox)),
        creator: None,
    })
}

/// `<slug>-fork`, else `<slug>-fork-2`, … : the first name no session,
/// branch or folder of the repository has.
fn free_name(store: &Store, repo: &Repository, source: &Session, what: &str) -> Result<String, SessionError> {
    for n in 1.. {
        let name = if n == 1 { format!("{}-{what}", source.slug) } else { format!("{}-{what}-{n}", source.slug) };
        let taken = store.session_by_slug(source.repo_id, &name)?.is_some()
            || git::branch_exists(&repo.root, &name)?
            || source.path.with_file_name(&name).exists();
        if !taken {
            return Ok(name);
        }
    }
    unreachable!("some name is free")
}

/// A session's sandbox mode as `--sandbox` spells it: a fork or review
/// is fenced in as its source is.
fn sandbox_name(mode: Option<crate::sandbox::Mode>) -> String {
    mode.map_or("none", crate::sandbox::Mode::as_str).to_owned()
}
