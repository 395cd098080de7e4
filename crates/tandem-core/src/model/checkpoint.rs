//! A checkpoint: the whole worktree of a session at the end of one agent
//! turn, or right before tandem itself changed it (issue 22).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::named_enum;

named_enum!(
    /// Why a checkpoint was made.
    Cause, "checkpoint cause" {
        /// An agent's turn ended (its own report, or for an agent whose
        /// state is inferred, its output went quiet).
        Turn = "turn",
        /// Right before `tandem sync` rebased or merged into the worktree.
        Sync = "sync",
        /// Right before `tandem merge` changed the worktree.
        Merge = "merge",
        /// Right before `tandem restore` put a snapshot back.
        Restore = "restore",
        /// Right before `tandem rewind` (what `rewind --undo` returns to).
        Rewind = "rewind",
    }
);

/// One checkpoint of a session, as stored and as `tandem checkpoints
/// --json` prints it (one object per checkpoint, newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Counts up from 1 per session; never reused, also after pruning.
    pub n: u32,
    /// The snapshot commit (`refs/tandem/checkpoints/<session id>/<n>`):
    /// its tree is the worktree; its first parent `HEAD` then, a further
    /// parent the index when it differed from both.
    pub commit: String,
    /// The commit's tree.
    pub tree: String,
    /// `HEAD` then (`None` before the first commit).
    pub head: Option<String>,
    /// The tree of the index as the agent left it (`None`: it had
    /// unmerged entries).
    pub index_tree: Option<String>,
    /// When the worktree's state was read (unix milliseconds).
    pub at_ms: i64,
    pub cause: Cause,
    /// For `Cause::Rewind`: the checkpoint the rewind went to.
    pub rewound_to: Option<u32>,
    /// The first line of the prompt that started the turn, as sent
    /// (`None`: typed in the terminal, or not a turn).
    pub prompt: Option<String>,
    /// The session's agent (`claude`, `shell`, a command line).
    pub agent: String,
    /// What the checkpoint changed against the one before it (the
    /// session's base commit for the first): files, added and removed
    /// lines (binary files count as changed files with no lines).
    pub files: u32,
    pub added: u32,
    pub removed: u32,
    /// The agent's own id of its last message then (Claude Code's
    /// assistant message `uuid`), for `rewind --conversation`.
    pub message_id: Option<String>,
}
