//! Keeping each repository's worktree pool full ([`crate::session::pool`]):
//! after every `tandem new` in it, after `tandem gc`, and when the
//! supervisor starts (for each repository with a live session), one
//! background thread per repository tidies the pool under the
//! repository's lock and adds what is missing, at the lowest CPU and disk
//! priority, outside the lock.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

use crate::config::Config;
use crate::repo::Repository;
use crate::session::{self, pool};
use crate::store::SessionState;

use super::State;

/// What the refill threads share.
#[derive(Default)]
pub(super) struct Shared {
    /// Pooled folders being made, and removed ones being deleted: never
    /// tidied, never reported as left over.
    busy: Mutex<HashSet<PathBuf>>,
    /// Repositories (by common dir) with a refill thread, and whether it
    /// was asked again meanwhile.
    filling: Mutex<std::collections::HashMap<PathBuf, bool>>,
}

impl Shared {
    /// The folders being made or deleted now.
    pub(super) fn busy(&self) -> HashSet<PathBuf> {
        self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn mark(&self, path: &std::path::Path, on: bool) {
        let mut busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if on {
            busy.insert(path.to_path_buf());
        } else {
            busy.remove(path);
        }
    }
}

/// Starts (or asks again) the refill of `repo`'s pool. Nothing to do
/// when the pool is off and has no folder left.
pub(super) fn refill(state: &Arc<State>, repo: &Repository, config: &Config) {
    let worktrees = session::worktrees_dir(&state.paths, repo, config);
    if pool::size(config) == 0 && !pool::pool_dir(&worktrees, repo).exists() {
        return;
    }
    {
        let mut filling = state.pool.filling.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(again) = filling.get_mut(&repo.common_dir) {
            *again = true;
            return;
        }
        filling.insert(repo.common_dir.clone(), false);
    }
    let (filler, repo) = (Arc::clone(state), repo.clone());
    let common_dir = repo.common_dir.clone();
    let spawned = thread::Builder::new().name("pool".into()).spawn(move || {
        let state = filler;
        crate::process::lower_thread_priority();
        loop {
            fill(&state, &repo);
            let mut filling = state.pool.filling.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if filling.get(&repo.common_dir) == Some(&true) {
                filling.insert(repo.common_dir.clone(), false);
                continue;
            }
            filling.remove(&repo.common_dir);
            break;
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the worktree pool's thread");
        state.pool.filling.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&common_dir);
    }
}

/// One pass: tidy under the lock, delete what went, then add worktrees
/// one at a time until the pool has its size (the config is read again
/// before each, so a lowered size stops it).
fn fill(state: &Arc<State>, repo: &Repository) {
    loop {
        let Ok((repo, config)) = session::open_repo(&state.paths, &repo.root) else { return };
        let worktrees = session::worktrees_dir(&state.paths, &repo, &config);
        let base = pool::pool_base(&repo, &config);
        let tidied = {
            let lock = state.repo_lock(&repo.common_dir);
            let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pool::tidy(&repo, &worktrees, pool::size(&config), base.as_deref(), &state.pool.busy())
        };
        let tidied = match tidied {
            Ok(tidied) => tidied,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "cannot tidy the worktree pool");
                return;
            }
        };
        delete(state, &repo, &tidied.aside);
        if pool::size(&config) == 0 {
            // Gone when empty: nothing is left to tidy.
            pool::remove_if_empty(&repo, &worktrees);
        }
        let Some(base) = base else { return };
        if tidied.ready >= pool::size(&config) as usize {
            return;
        }
        let mut making = None;
        let made = pool::make(&repo, &worktrees, &base, |path| {
            state.pool.mark(path, true);
            making = Some(path.to_path_buf());
        });
        if let Some(path) = making {
            state.pool.mark(&path, false);
        }
        match made {
            Ok(path) => tracing::info!(path = %path.display(), "a pooled worktree is ready"),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "cannot add a pooled worktree");
                return;
            }
        }
    }
}

/// Deletes folders [`pool::tidy`] set aside, marked busy meanwhile.
pub(super) fn delete(state: &State, repo: &Repository, aside: &[PathBuf]) {
    for path in aside {
        state.pool.mark(path, true);
        pool::delete(repo, path);
        state.pool.mark(path, false);
    }
}

/// At the supervisor's start: refills the pool of each repository that
/// has a live session.
pub(super) fn start(state: &Arc<State>) {
    let Ok(store) = state.store() else { return };
    let Ok(repos) = store.repos() else { return };
    let live = store
        .sessions_in(&[SessionState::Running, SessionState::Stopped, SessionState::Exited, SessionState::Lost])
        .unwrap_or_default();
    for (repo_id, _, root) in repos {
        if !live.iter().any(|s| s.repo_id == repo_id) {
            continue;
        }
        if let Ok((repo, config)) = session::open_repo(&state.paths, &root) {
            refill(state, &repo, &config);
        }
    }
}
