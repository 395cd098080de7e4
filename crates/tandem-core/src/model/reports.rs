//! What an operation reports back: `tandem rm`, `tandem gc`, `tandem
//! doctor` and conflict control.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What `tandem rm` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveReport {
    pub slug: String,
    pub branch: String,
    pub path: PathBuf,
    /// The snapshot ref, when there was anything to keep.
    pub archive_ref: Option<String>,
}

/// What `tandem gc` dropped (`session::end::gc`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcReport {
    /// Archive refs deleted.
    pub refs: Vec<String>,
    /// Archive refs old enough but kept: an archived session needs them.
    pub kept: Vec<String>,
    /// Old enough refs that another state folder made (another
    /// `TANDEM_HOME` on the same repository): left alone.
    #[serde(default)]
    pub others: Vec<String>,
    /// Trash entries deleted.
    pub trash: Vec<PathBuf>,
    /// Removed sessions whose checkpoints went with their snapshot
    /// (removed longer ago than the limit): `NAME (N checkpoints)`.
    #[serde(default)]
    pub checkpoints: Vec<String>,
    /// Folders of the worktree pool removed: left half made by a killed
    /// supervisor, or beyond `[worktrees] pool` (issue 23).
    #[serde(default)]
    pub pool: Vec<PathBuf>,
}

/// One thing `tandem doctor` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// The session it concerns, if one.
    pub session: Option<String>,
    /// What is wrong, in a sentence.
    pub problem: String,
    /// What `--fix` does (or did), or why it leaves it.
    pub remedy: String,
    /// Whether it was repaired in this run.
    pub fixed: bool,
}

/// What conflict control found for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConflicts {
    pub name: String,
    /// Paths it changed since its fork point with its base, committed or
    /// not.
    pub touched: Vec<String>,
    pub base: String,
    /// Paths that would conflict if it were merged into its base now;
    /// `None` when it merges cleanly (or has nothing to merge).
    pub base_conflicts: Option<Vec<String>>,
    /// Touched paths outside the paths its brief owns.
    pub outside_owned: Vec<String>,
    /// Sessions it shares touched paths with, and those it would conflict
    /// with.
    pub overlaps_with: Vec<String>,
    pub conflicts_with: Vec<String>,
}

/// Two sessions that touched the same paths, or would conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConflicts {
    pub a: String,
    pub b: String,
    /// Paths both touched.
    pub overlap: Vec<String>,
    /// Paths their merge would conflict in; `None` when it is clean.
    pub conflicts: Option<Vec<String>>,
}

/// Conflict control's answer (`conflicts`): every
/// session's findings and every pair that overlaps or conflicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictReport {
    pub sessions: Vec<SessionConflicts>,
    pub pairs: Vec<PairConflicts>,
    /// How many pairs were checked (sessions with changes of their own).
    pub pairs_checked: usize,
}
