//! What `tandem list` shows beside the stored row: git facts (dirty,
//! ahead/behind the base) gathered for all sessions in parallel, and the
//! session's live state checked against its host process.

use std::path::Path;

use serde::Serialize;

use crate::git;
use crate::process;
use crate::store::{Session, SessionState};

/// Git facts about one session; `None` where git could not tell (e.g. the
/// worktree folder is gone).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GitFacts {
    /// Uncommitted or untracked changes in the worktree.
    pub dirty: Option<bool>,
    /// Commits on the branch not on the base.
    pub ahead: Option<u32>,
    /// Commits on the base not on the branch.
    pub behind: Option<u32>,
}

/// Facts for each session, in order, one thread per session.
#[must_use]
pub fn gather(repo_root: &Path, sessions: &[Session]) -> Vec<GitFacts> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = sessions.iter().map(|s| scope.spawn(move || one(repo_root, s))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    })
}

fn one(repo_root: &Path, session: &Session) -> GitFacts {
    let dirty = session.path.is_dir().then(|| git::status(&session.path).ok().map(|s| s.is_dirty())).flatten();
    // The base as named, so `behind` grows as the base moves on; the
    // recorded commit when the name no longer resolves (or was `HEAD`).
    let base = match session.base_ref.as_str() {
        "HEAD" => session.base_commit.clone(),
        name => match git::resolve_commit(repo_root, name) {
            Ok(Some(_)) => name.to_owned(),
            _ => session.base_commit.clone(),
        },
    };
    let counts = git::ahead_behind(repo_root, &base, &format!("refs/heads/{}", session.branch)).ok();
    GitFacts { dirty, ahead: counts.map(|c| c.0), behind: counts.map(|c| c.1) }
}

/// The state to show: a `running` or `creating` session whose host
/// process is gone is `lost`.
#[must_use]
pub fn live_state(session: &Session) -> SessionState {
    if session.state == SessionState::Running && !session.host_pid.is_some_and(process::is_alive) {
        SessionState::Lost
    } else {
        session.state
    }
}
