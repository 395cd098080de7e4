//! The supervisor's side of conflict control: it knows, from the facts
//! cache, which worktrees are clean (their state is their branch's tip,
//! no git needed) and how many changes each has seen (a dirty worktree's
//! snapshot is made again only after one), and keeps one
//! [`conflicts::Cache`] per repository. So a report after nothing
//! changed runs no git at all, and after a change only what that change
//! touched is recomputed: on demand (`tandem conflicts`, `tandem list`,
//! the agent view), never on a timer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::repo::Repository;
use crate::session::conflicts::{self, Report, Side};
use crate::session::{SessionError, facts};
use crate::store::{Session, SessionState};

use super::State;

/// One cache per repository (by its common dir).
#[derive(Default)]
pub(super) struct Shared {
    caches: Mutex<HashMap<PathBuf, conflicts::Cache>>,
}

impl Shared {
    /// Drops everything cached for `repo`.
    pub(super) fn forget(&self, repo: &Repository) {
        self.caches.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&repo.common_dir);
    }
}

/// The report for the live sessions among `sessions` (all of `repo`).
pub(super) fn report(state: &State, repo: &Repository, sessions: &[Session]) -> Result<Report, SessionError> {
    let live: Vec<&Session> = sessions
        .iter()
        .filter(|s| !matches!(s.state, SessionState::Archived | SessionState::Removed | SessionState::Creating))
        .filter(|s| s.path.is_dir())
        .collect();
    if live.is_empty() {
        return Ok(Report::default());
    }
    let tips = state.facts.ref_tips(repo);
    let mut caches = state.conflicts.caches.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let cache = caches.entry(repo.common_dir.clone()).or_default();
    let mut sides = Vec::with_capacity(live.len());
    for s in live {
        let Some(tip) = tips.get(&format!("refs/heads/{}", s.branch)).cloned() else { continue };
        let clean = state
            .facts
            .fresh_worktree(s)
            .is_some_and(|w| w.changed == 0 && w.untracked == 0 && w.head.as_deref() == Some(s.branch.as_str()));
        let commit = if clean {
            tip
        } else {
            let generation = state.facts.worktree_generation(s);
            match cache.state(&s.id, &s.path, &tip, generation, &state.paths.state_dir) {
                Ok(commit) => commit,
                Err(e) => {
                    tracing::warn!(session = %s.slug, error = %e, "no snapshot for conflict control");
                    continue;
                }
            }
        };
        let base = facts::base_of(s, &tips);
        let base_tip = tips.get(&base).cloned().unwrap_or_else(|| s.base_commit.clone());
        sides.push(Side {
            id: s.id.clone(),
            slug: s.slug.clone(),
            state: commit,
            base: s.base_ref.clone(),
            base_tip,
            owned: s.owned.clone(),
        });
    }
    Ok(cache.report(&repo.root, &sides)?)
}
