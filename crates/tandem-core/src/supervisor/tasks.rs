//! The supervisor's task requests ([`Request::TaskNew`],
//! [`Request::TaskPromote`], [`Request::TaskSetStatus`]): each runs
//! [`crate::tasks`] under the repository's lock, then makes or archives
//! trials through the same requests `tandem new` and `tandem archive`
//! use (each takes the lock itself).

use std::sync::Arc;

use super::State;
use super::create::create;
use super::requests::handle;
use crate::protocol::{Outcome, Request, Response, TaskNewRequest};
use crate::session::{self, SessionError};
use crate::store::TaskStatus;
use crate::tasks;

/// `tandem task new`: under the lock, names the task and stores it
/// (fault points `task.named`, `task.stored`); then creates its trials
/// one by one. A task none of whose trials was made is dropped, as is one
/// left so by a kill (the next supervisor's reconcile does it).
pub(super) fn new(state: &Arc<State>, req: &TaskNewRequest) -> Result<Response, SessionError> {
    tasks::check_new(req)?;
    let planned = {
        let store = state.store()?;
        let (repo, config) = session::open_repo_env(&state.paths, &req.cwd, &req.env)?;
        let lock = state.repo_lock(&repo.common_dir);
        let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let repo_id = store.upsert_repo(&repo.common_dir, &repo.root)?;
        let planned = tasks::plan_new(&store, &repo, &config, repo_id, req)?;
        crate::fault::point("task.named");
        store.insert_task(&planned.task)?;
        crate::fault::point("task.stored");
        planned
    };
    let count = planned.trials.len();
    let mut trials = Vec::new();
    let mut failed = None;
    for request in &planned.trials {
        match create(state, request) {
            Ok(Response::Created { session, notes }) => trials.push(Outcome { session: *session, notes }),
            other => {
                failed = Some(other.map_or_else(|e| e.to_string(), |_| "create answered something else".to_owned()));
                break;
            }
        }
    }
    if trials.is_empty() {
        // No trial was made: as if never asked.
        state.store()?.delete_tasks_without_trials(Some(&planned.task.id))?;
    }
    Ok(Response::TaskCreated { slug: planned.task.slug, count, trials, failed })
}

/// `tandem task promote`: under the lock, [`tasks::promote`]; then the
/// other trials are archived, in order, until one fails.
pub(super) fn promote(
    state: &Arc<State>,
    cwd: &std::path::Path,
    task: &str,
    trial: &str,
    env: &[(String, String)],
) -> Result<Response, SessionError> {
    let promoted = {
        let store = state.store()?;
        let (repo, config) = session::open_repo_env(&state.paths, cwd, env)?;
        let lock = state.repo_lock(&repo.common_dir);
        let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks::promote(&store, &repo, &config, env, task, trial)?
    };
    let mut archived = Vec::new();
    let mut failed = None;
    for other in &promoted.others {
        match handle(state, Request::Archive { session_id: other.id.clone(), env: env.to_vec() }) {
            Ok(Response::Archived { session, notes }) => archived.push(Outcome { session: *session, notes }),
            other => {
                failed = Some(other.map_or_else(|e| e.to_string(), |_| "archive answered something else".to_owned()));
                break;
            }
        }
    }
    Ok(Response::TaskPromoted { task: promoted.task.slug, winner: Box::new(promoted.winner), archived, failed })
}

/// `tandem task set --status`: under the lock, [`tasks::set_status`].
pub(super) fn set_status(
    state: &Arc<State>,
    cwd: &std::path::Path,
    task: &str,
    status: TaskStatus,
) -> Result<Response, SessionError> {
    let store = state.store()?;
    let repo = state.discover(cwd)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let task = tasks::set_status(&store, &repo, task, status)?;
    Ok(Response::TaskStatusSet { task: task.slug, status })
}
