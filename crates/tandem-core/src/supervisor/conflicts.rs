//! The supervisor's side of conflict control: it knows, from the facts
//! cache, which worktrees are clean (their state is their branch's tip,
//! no git needed) and how many changes each has seen (a dirty worktree's
//! snapshot is made again only after one), and keeps one
//! [`conflicts::Cache`] per repository. So a report after nothing
//! changed runs no git at all, and after a change only what that change
//! touched is recomputed, never on a timer:
//! - `tandem conflicts` computes at once;
//! - `tandem list` and the agent view get the latest report ([`marks`]);
//!   when a session's branch tip, base or worktree changed since it was
//!   made, one background thread at the lowest CPU and I/O priority
//!   brings it up to date and then wakes the views (so listing never
//!   waits for `git merge-tree`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::conflicts::{self, Report, Side};
use crate::protocol::Response;
use crate::repo::Repository;
use crate::session::{self, SessionError, facts};
use crate::store::{Session, SessionState};

use super::State;

/// What a report was made from, per session: its id, branch tip, base
/// tip and worktree change count (`None`: unknown, so never current).
type Key = (String, String, String, Option<u64>);

/// One cache per repository (by its common dir), the latest report and
/// what it was made from, and which repositories are being recomputed.
#[derive(Default)]
pub(super) struct Shared {
    caches: Mutex<HashMap<PathBuf, conflicts::Cache>>,
    latest: Mutex<HashMap<PathBuf, (Vec<Key>, Report)>>,
    running: Mutex<HashSet<PathBuf>>,
}

impl Shared {
    /// Drops everything cached for `repo`.
    pub(super) fn forget(&self, repo: &Repository) {
        self.caches.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&repo.common_dir);
        self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&repo.common_dir);
    }
}

fn live(sessions: &[Session]) -> Vec<&Session> {
    sessions.iter().filter(|s| is_live(s)).filter(|s| s.path.is_dir()).collect()
}

/// Whether conflict control looks at `s` (given its worktree is there).
fn is_live(s: &Session) -> bool {
    !matches!(s.state, SessionState::Archived | SessionState::Removed | SessionState::Creating)
}

/// What a report of `sessions` now would be made from, with the
/// repository's branch tips `tips`.
fn keys(state: &State, sessions: &[&Session], tips: &HashMap<String, String>) -> Vec<Key> {
    sessions
        .iter()
        .map(|s| {
            let tip = tips.get(&format!("refs/heads/{}", s.branch)).cloned().unwrap_or_default();
            let base = tips.get(&facts::base_of(s, tips)).cloned().unwrap_or_else(|| s.base_commit.clone());
            (s.id.clone(), tip, base, state.facts.worktree_generation(s))
        })
        .collect()
}

/// The latest report for `repo` (empty before the first), and whether it
/// is current; when it is not, a background thread recomputes it (one
/// per repository at a time) and then counts a change, so the agent view
/// lists again.
///
/// `exists[i]`: whether `sessions[i]`'s worktree is there, as the facts
/// cache just said ([`crate::model::WorktreeFacts::exists`]: a `stat` of
/// 200 worktrees was a tenth of the supervisor's `list`), and `tips` the
/// branch tips it used.
pub(super) fn marks(
    state: &Arc<State>,
    repo: &Repository,
    sessions: &[Session],
    exists: &[bool],
    tips: &HashMap<String, String>,
) -> (Report, bool) {
    let live: Vec<&Session> =
        sessions.iter().zip(exists).filter(|(s, there)| **there && is_live(s)).map(|(s, _)| s).collect();
    let keys = keys(state, &live, tips);
    let latest = state.conflicts.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (report, current) = match latest.get(&repo.common_dir) {
        Some((made_from, report)) => (report.clone(), *made_from == keys && keys.iter().all(|k| k.3.is_some())),
        None => (Report::default(), keys.is_empty()),
    };
    drop(latest);
    if !current
        && state
            .conflicts
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(repo.common_dir.clone())
    {
        let (shared, owned_repo, sessions) = (Arc::clone(state), repo.clone(), sessions.to_vec());
        let spawned = std::thread::Builder::new().name("conflicts".into()).spawn(move || {
            crate::process::lower_thread_priority();
            if let Err(e) = self::report(&shared, &owned_repo, &sessions) {
                tracing::warn!(error = %e, "conflict control failed");
            }
            let running = &shared.conflicts.running;
            running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&owned_repo.common_dir);
            let (count, cvar) = &shared.changes;
            *count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
            cvar.notify_all();
        });
        if spawned.is_err() {
            state.conflicts.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&repo.common_dir);
        }
    }
    (report, current)
}

/// The report for the live sessions among `sessions` (all of `repo`),
/// computed now; it becomes the latest.
pub(super) fn report(state: &State, repo: &Repository, sessions: &[Session]) -> Result<Report, SessionError> {
    // Made from the sessions whose worktree is a checkout, as the facts
    // cache tells `marks` (`WorktreeFacts::exists`), so the two agree.
    let checkouts: Vec<&Session> = sessions.iter().filter(|s| is_live(s) && s.path.join(".git").exists()).collect();
    let made_from = keys(state, &checkouts, &state.facts.ref_tips(repo));
    let report = compute(state, repo, sessions, &[])?;
    state
        .conflicts
        .latest
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(repo.common_dir.clone(), (made_from, report.clone()));
    Ok(report)
}

fn compute(
    state: &State,
    repo: &Repository,
    sessions: &[Session],
    foreign: &[crate::protocol::ForeignSide],
) -> Result<Report, SessionError> {
    let live = live(sessions);
    if live.is_empty() && foreign.is_empty() {
        return Ok(Report::default());
    }
    let started = std::time::Instant::now();
    // Worktrees whose facts the cache lacks and would keep (not listed
    // since the supervisor started, or changed since): their `git status`
    // now, through the cache, which also watches them from now on, so
    // their snapshots are reused until they change (issue 23). A clean
    // one then needs no snapshot, and a dirty one's adds only the paths
    // status listed. An answer the cache does not keep (watches not in
    // yet) is used for this call only. Worktrees being watched or polled
    // get no extra status: their snapshot walks them whole, as before.
    let unknown: Vec<&Session> = live.iter().copied().filter(|s| state.facts.lacks_facts(s)).collect();
    let polled: HashMap<&str, crate::model::WorktreeFacts> = if unknown.is_empty() {
        HashMap::new()
    } else {
        state
            .facts
            .query(repo, &unknown)
            .into_iter()
            .zip(&unknown)
            .filter(|(f, _)| f.source == crate::model::FactsSource::Polled)
            .map(|(f, s)| (s.id.as_str(), f.worktree))
            .collect()
    };
    let tips = state.facts.ref_tips(repo);
    let mut caches = state.conflicts.caches.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let cache = caches.entry(repo.common_dir.clone()).or_default();
    let mut sides = Vec::with_capacity(live.len());
    // Clean worktrees (the facts cache knows) are their branch's tip; the
    // others are snapshots, reused until their worktree changes.
    let mut found: Vec<(&Session, String, Option<String>)> = Vec::new();
    let mut wanted = Vec::new();
    for s in live {
        let Some(tip) = tips.get(&format!("refs/heads/{}", s.branch)).cloned() else { continue };
        let fresh = state
            .facts
            .fresh_worktree_at(s)
            .map(|(w, generation)| (w, Some(generation)))
            .or_else(|| polled.get(s.id.as_str()).filter(|w| w.exists).map(|w| (w.clone(), None)));
        let clean = fresh
            .as_ref()
            .is_some_and(|(w, _)| w.changed == 0 && w.untracked == 0 && w.head.as_deref() == Some(s.branch.as_str()));
        if clean {
            found.push((s, tip.clone(), Some(tip)));
        } else {
            // What `git status` listed at this very generation: only these
            // paths are snapshotted (else the whole worktree is walked).
            let (generation, paths) = match fresh {
                Some((w, generation)) => (generation, w.paths),
                None => (state.facts.worktree_generation(s), None),
            };
            wanted.push(crate::conflicts::Wanted {
                id: s.id.clone(),
                path: s.path.clone(),
                head: tip.clone(),
                generation,
                paths,
            });
            found.push((s, tip, None));
        }
    }
    let snapshots = wanted.len();
    let mut made = cache.states(&wanted, &state.paths.state_dir).into_iter();
    for (s, _, commit) in found {
        let commit = match commit {
            Some(commit) => commit,
            None => match made.next() {
                Some(Ok(commit)) => commit,
                Some(Err(e)) => {
                    tracing::warn!(session = %s.slug, error = %e, "no snapshot for conflict control");
                    continue;
                }
                None => continue,
            },
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
    // Other hosts' sessions: their commits are here (fetched); a base
    // this repository has by the same name is compared at its tip here.
    for f in foreign {
        let local_base = format!("refs/heads/{}", f.base.strip_prefix("origin/").unwrap_or(&f.base));
        let base_tip = tips.get(&local_base).cloned().unwrap_or_else(|| f.base_commit.clone());
        sides.push(Side {
            id: f.name.clone(),
            slug: f.name.clone(),
            state: f.state.clone(),
            base: f.base.clone(),
            base_tip,
            owned: Vec::new(),
        });
    }
    let states_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report = cache.report(&repo.root, &sides)?;
    tracing::debug!(
        sessions = sides.len(),
        snapshots = snapshots,
        states_ms,
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        "conflict control"
    );
    Ok(report)
}

/// `tandem conflicts`: the report for the repository at `cwd`, computed
/// afresh when `fresh`.
pub(super) fn request(
    state: &State,
    cwd: &std::path::Path,
    fresh: bool,
    foreign: &[crate::protocol::ForeignSide],
) -> Result<Response, SessionError> {
    let store = state.store()?;
    let repo = state.discover(cwd)?;
    let sessions = match store.find_repo(&repo.common_dir)? {
        Some(id) => store.sessions(id)?,
        None => Vec::new(),
    };
    drop(store);
    for s in &sessions {
        session::sync_sandboxed(&state.paths, &repo, s);
    }
    if fresh {
        state.conflicts.forget(&repo);
    }
    if !foreign.is_empty() {
        return Ok(Response::Conflicts { report: Box::new(compute(state, &repo, &sessions, foreign)?) });
    }
    Ok(Response::Conflicts { report: Box::new(report(state, &repo, &sessions)?) })
}
