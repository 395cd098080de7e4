//! Shipping a session's work: its diff, a review of it ([`review`]),
//! pushing, its pull request ([`pull_request`], over the GitHub API of
//! [`github`]), merging ([`merge_journal`] keeps a killed merge
//! recoverable) and syncing with its base. Built on a session's row and
//! git; the session lifecycle ([`crate::session`]) is underneath.
//! One file per job: `diff.rs`, `push.rs`, `sync.rs` (with `--abort`),
//! `merge.rs`; every item is named here, as `ship::sync`, `ship::Against`.
//!

pub mod diff;
pub mod github;
pub mod land;
mod merge;
pub mod merge_journal;
pub mod pull_request;
mod push;
pub mod review;
mod sync;

use std::path::{Path, PathBuf};

use crate::git::GitError;
use crate::store::Session;

pub use diff::{Against, DiffReport, FileCounts, IntentIndex, diff_from, parse_numstat};
pub use merge::{MergeMode, merge, merge_target};
pub use push::{push, push_remote};
use sync::abort_rebase;
pub(crate) use sync::owner_tag;
pub use sync::{SyncMode, Synced, sync, sync_abort, sync_said};

/// Why a ship step cannot go on; each message is one line that says what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("`{against}` does not name a commit; pass base, remote, or an existing branch, tag or commit")]
    BadRef { against: String },
    #[error("this repository has no remote; add one with `git remote add origin URL`")]
    NoRemote,
    #[error("the remote has no default branch known here; run `git remote set-head origin --auto`")]
    NoRemoteDefault,
    #[error("session `{slug}` has no worktree at {}; `tandem doctor` explains", path.display())]
    NoWorktree { slug: String, path: PathBuf },
    #[error("`{branch}` is a protected branch; tandem never pushes it")]
    Protected { branch: String },
    #[error(
        "session `{slug}` has uncommitted changes in {files} file(s); commit them (or ask its agent to) before syncing"
    )]
    Dirty { slug: String, files: usize },
    #[error("syncing {slug} did not start: {reason}; nothing is in progress, run `tandem sync {slug}` again")]
    SyncFailed { slug: String, reason: String },
    #[error("session `{slug}` has no sync in progress")]
    NothingToAbort { slug: String },
    #[error("cannot read tandem's owner tag (`<state folder>/owner`): {why}; check the state folder is writable")]
    Owner { why: String },
    #[error("session `{slug}` is in the middle of a rebase or merge; finish it, or run `tandem sync {slug} --abort`")]
    InProgress { slug: String },
    #[error("`git push` failed: {0}")]
    Push(String),
    #[error("{branch} has uncommitted changes in {} ({files} file(s)); commit or stash them there first", path.display())]
    TargetDirty { branch: String, path: PathBuf, files: usize },
    #[error("merging {slug} into {target} would conflict in {}; run `tandem sync {slug}` and resolve them first", files.join(", "))]
    WouldConflict { slug: String, target: String, files: Vec<String> },
    #[error("a merge of {slug} into {target} was interrupted and left {} half done; roll it back with `tandem merge --abort {slug}`", path.display())]
    Interrupted { slug: String, target: String, path: PathBuf },
    #[error("no merge of {slug} to abort: none was interrupted; `tandem doctor` lists what is")]
    NoMergeToAbort { slug: String },
    #[error("a merge of {slug} is still running (pid {pid}); wait for it to end, then try again")]
    MergeRunning { slug: String, pid: u32 },
    #[error("a git process (pid {pid}) is still at work in {}; wait for it to end, then try again", path.display())]
    GitBusy { path: PathBuf, pid: u32 },
    #[error(
        "{target} moved elsewhere (or its worktree was switched) since the interrupted merge of {slug} began; check it by hand, then remove that merge's record with `tandem merge --abort {slug}`"
    )]
    MergeMoved { slug: String, target: String },
    #[error("cannot write to tandem's state folder: {0}")]
    State(#[source] std::io::Error),
    #[error("{slug} has nothing to merge into {target}")]
    NothingToMerge { slug: String, target: String },
    /// `merge --squash` of commits whose changes add up to nothing
    /// against the target (issue 19).
    #[error("nothing to squash: the branch of {slug} has no changes against {target}; nothing was changed")]
    NothingToSquash { slug: String, target: String },
    #[error("{target} cannot be fast-forwarded to {slug}; sync it first or merge without --ff")]
    NotFastForward { slug: String, target: String },
}

/// The session's worktree, or why there is none.
///
/// # Errors
/// [`ShipError::NoWorktree`].
pub fn worktree(session: &Session) -> Result<&Path, ShipError> {
    if session.path.is_dir() {
        Ok(&session.path)
    } else {
        Err(ShipError::NoWorktree { slug: session.slug.clone(), path: session.path.clone() })
    }
}
