//! What `tandem list` shows about a session's git state beside its row
//! (gathered by `session::facts`).

use serde::{Deserialize, Serialize};

use super::{Session, SessionState};

/// Lines added and removed, and files touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStat {
    pub files: u32,
    pub insertions: u32,
    pub deletions: u32,
}

impl DiffStat {
    fn add(self, other: DiffStat) -> DiffStat {
        DiffStat {
            files: self.files + other.files,
            insertions: self.insertions + other.insertions,
            deletions: self.deletions + other.deletions,
        }
    }

    /// Parses `git diff --shortstat` (` 3 files changed, 10 insertions(+),
    /// 2 deletions(-)`); empty text is no change.
    #[must_use]
    pub fn parse(text: &str) -> DiffStat {
        let mut stat = DiffStat::default();
        for part in text.split(',') {
            let mut words = part.split_whitespace();
            let n: u32 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            match words.next() {
                Some(w) if w.starts_with("file") => stat.files = n,
                Some(w) if w.starts_with("insertion") => stat.insertions = n,
                Some(w) if w.starts_with("deletion") => stat.deletions = n,
                _ => {}
            }
        }
        stat
    }
}

/// Facts that need a scan of the worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorktreeFacts {
    /// False when the folder is gone.
    pub exists: bool,
    /// Tracked paths changed (staged or not) and untracked paths.
    pub changed: u32,
    pub untracked: u32,
    /// The checked-out branch (`None` when detached or unknown).
    pub head: Option<String>,
    /// Uncommitted changes of tracked files against HEAD.
    pub uncommitted: DiffStat,
    /// The paths `git status` listed whose worktree file differs from the
    /// index (changed, unmerged, untracked; an untracked folder as
    /// `folder/`), kept by the supervisor's facts cache so conflict
    /// control snapshots only these (issue 23); `None` when there were
    /// more than [`WorktreeFacts::MAX_PATHS`]. Not sent to clients.
    #[serde(skip)]
    pub paths: Option<std::sync::Arc<[String]>>,
}

impl WorktreeFacts {
    /// The most paths [`WorktreeFacts::paths`] keeps: past it a snapshot
    /// walks the whole worktree anyway.
    pub const MAX_PATHS: usize = 4_096;
}

/// Facts computed from refs and commits alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefFacts {
    /// The branch's commit; `None` when the branch is gone.
    pub tip: Option<String>,
    /// Commits on the branch not on the base, and on the base not on it.
    pub ahead: Option<u32>,
    pub behind: Option<u32>,
    /// The remote's default branch (`origin/main`) and how many of its
    /// commits the branch lacks.
    pub remote_base: Option<String>,
    pub behind_remote: Option<u32>,
    /// The commits' changes against the session's base commit.
    pub committed: DiffStat,
}

/// Everything `tandem list` shows about a session's git state; `None`
/// where git could not tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitFacts {
    pub worktree: WorktreeFacts,
    pub refs: RefFacts,
    /// How the supervisor keeps the worktree facts current.
    #[serde(default)]
    pub source: FactsSource,
}

/// How a worktree's facts are kept current (`facts` in `tandem list
/// --json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactsSource {
    /// Every folder is watched with inotify: the facts are served from
    /// the supervisor's cache until a change in the worktree drops them.
    Watched,
    /// Not (or not yet) watched: the watch budget ran out (`[watch]
    /// max_watches`, `fs.inotify.max_user_watches`) or the watches are
    /// still being set up, so the facts were read with git for this answer.
    #[default]
    Polled,
}

/// How the facts cache stands with its watch budget, for `tandem doctor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchReport {
    /// Watches held now.
    pub used: usize,
    /// The most it may hold ([`watch_cap`]); 0 without inotify.
    pub cap: usize,
    /// `fs.inotify.max_user_watches`, if readable.
    pub system_max: Option<usize>,
    /// Sessions (ids) whose worktree is polled because watches ran out.
    pub polled: Vec<String>,
}

impl FactsSource {
    /// `watched` or `polled`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FactsSource::Watched => "watched",
            FactsSource::Polled => "polled",
        }
    }
}

impl GitFacts {
    /// Uncommitted or untracked changes.
    #[must_use]
    pub fn dirty(&self) -> Option<bool> {
        self.worktree.exists.then_some(self.worktree.changed + self.worktree.untracked > 0)
    }

    /// Committed plus uncommitted changes against the base (a file changed
    /// in both counts twice).
    #[must_use]
    pub fn diffstat(&self) -> DiffStat {
        self.refs.committed.add(self.worktree.uncommitted)
    }

    /// What is wrong, plainly: the worktree folder gone, the branch gone,
    /// or another branch checked out.
    #[must_use]
    pub fn problem(&self, session: &Session) -> Option<String> {
        if matches!(session.state, SessionState::Archived | SessionState::Removed) {
            return None;
        }
        if !self.worktree.exists {
            return Some("worktree folder missing".to_owned());
        }
        if self.refs.tip.is_none() {
            return Some(format!("branch {} deleted", session.branch));
        }
        match &self.worktree.head {
            Some(head) if head != &session.branch => Some(format!("switched to {head}")),
            None => Some("detached HEAD".to_owned()),
            _ => None,
        }
    }
}
