//! A session as stored and sent: its row, its state, the metadata the
//! user sets on it, how its agent is fenced in, and the tasks its trials
//! belong to.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::PrStatus;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Row written, worktree or host not ready yet.
    #[default]
    Creating,
    /// The host runs the agent.
    Running,
    /// The agent exited by itself; see `exit_code`.
    Exited,
    /// Stopped by `tandem stop`; the worktree stays.
    Stopped,
    /// Its host died without recording an exit (found by reconcile).
    Lost,
    /// Archived by `tandem archive`: no worktree, branch and history
    /// kept; `tandem restore` brings it back.
    Archived,
    /// Removed by `tandem rm`; the row is kept as history.
    Removed,
}

impl SessionState {
    /// The name stored and shown (`running`, `exited`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Creating => "creating",
            SessionState::Running => "running",
            SessionState::Exited => "exited",
            SessionState::Stopped => "stopped",
            SessionState::Lost => "lost",
            SessionState::Archived => "archived",
            SessionState::Removed => "removed",
        }
    }
}

impl FromStr for SessionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "creating" => SessionState::Creating,
            "running" => SessionState::Running,
            "exited" => SessionState::Exited,
            "stopped" => SessionState::Stopped,
            "lost" => SessionState::Lost,
            "archived" => SessionState::Archived,
            "removed" => SessionState::Removed,
            other => return Err(format!("unknown session state {other:?}")),
        })
    }
}

/// Defines a metadata enum stored and shown by its kebab-case name.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// Every value, in order.
            pub const ALL: &[$name] = &[$($name::$variant),*];

            /// The name stored and shown.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl FromStr for $name {
            type Err = String;
            /// Parses the name; the error says which names are valid.
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!(
                        "unknown {} `{other}`; use one of {}",
                        $what,
                        [$($text),*].join(", ")
                    )),
                }
            }
        }
    };
}

// Also used by the store's own enums (`store::events::EventKind`).
pub(crate) use named_enum;

named_enum!(
    /// How urgent a session is; sorts `urgent` first.
    Priority, "priority" { Urgent = "urgent", High = "high", Medium = "medium", Low = "low", None = "none" }
);

named_enum!(
    /// Where a session's work stands, as on a task board.
    TaskStatus, "status" {
        Backlog = "backlog",
        InProgress = "in-progress",
        InReview = "in-review",
        Done = "done",
        Cancelled = "cancelled",
    }
);

named_enum!(
    /// What a running agent does, as it reports it (Claude Code's hooks,
    /// a structured agent's stream).
    Activity, "activity" {
        Running = "running",
        /// It waits on a permission decision (`tandem approve`/`deny`).
        NeedsInput = "needs-input",
        Idle = "idle",
        /// Its turn ended with a question to the user (see
        /// [`crate::agent::question`]); the answer is the next prompt.
        Asking = "asking",
    }
);

/// What the user says about a session (`tandem new --title`, `tandem set`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Free text.
    pub title: Option<String>,
    pub priority: Priority,
    pub status: TaskStatus,
    /// Pinned sessions list first.
    pub pinned: bool,
}

impl Default for Meta {
    fn default() -> Meta {
        Meta { title: None, priority: Priority::None, status: TaskStatus::InProgress, pinned: false }
    }
}

/// One session as stored. `Session::default()` is an empty `creating`
/// row with no id: a base for struct-update syntax where a row is made
/// outside the store's reads (tests, benchmarks, `doctor`'s adoption).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random, 12 hex digits; names the session's log folder and socket.
    pub id: String,
    pub repo_id: i64,
    /// Directory-safe name, unique among the repository's live sessions.
    pub slug: String,
    pub branch: String,
    /// What the user asked for: `claude`, `shell`, or the command line.
    pub agent: String,
    /// The argument vector the host runs.
    pub command: Vec<String>,
    /// The worktree.
    pub path: PathBuf,
    /// The base ref as named (`main`, `HEAD`, `v1.2`), and the commit it
    /// was when the session was made.
    pub base_ref: String,
    pub base_commit: String,
    pub state: SessionState,
    /// The agent's exit code, when `state` is `exited` (128+N for signal N).
    pub exit_code: Option<i32>,
    pub host_pid: Option<i32>,
    /// Also the agent's process group id (the host starts it with setsid).
    pub agent_pid: Option<i32>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Where `tandem rm` or `tandem archive` left a snapshot, if it made
    /// one.
    pub archive_ref: Option<String>,
    pub meta: Meta,
    /// Whether tandem made the branch (and so may delete it on `rm`);
    /// false for `--branch` of an existing branch.
    pub owns_branch: bool,
    /// The session's pull request: the one it was made from
    /// (`--from-pr`) or opened by `tandem pr`.
    pub pr_number: Option<i64>,
    /// Repository-relative paths copied in by `.worktreeinclude`.
    pub included: Vec<String>,
    /// The branch's commit when tandem last saw it, so `tandem doctor`
    /// can recreate a branch deleted by hand.
    pub last_commit: Option<String>,
    /// What the session did, stored by `tandem archive`.
    pub summary: Option<String>,
    /// Unix seconds, when archived.
    pub archived_at: Option<i64>,
    /// What a running agent that reports its state (Claude Code through
    /// its hooks) last said it does; `None` for agents that do not.
    pub activity: Option<Activity>,
    /// What a `needs-input` agent asks, in a line (`Bash: cargo test`).
    pub asking: Option<String>,
    /// The agent's own conversation id (Claude Code's `session_id`),
    /// for resuming it.
    pub agent_session: Option<String>,
    /// Unix seconds, when `activity` last changed.
    pub activity_at: Option<i64>,
    /// Whether tandem picked the name, so the agent may rename it
    /// (title, and the branch while unpushed) after its first prompt.
    pub auto_named: bool,
    /// An operation begun and not finished (`archive`, `remove`,
    /// `remove-force`): the next reconcile finishes it.
    pub pending: Option<String>,
    /// The pull request's status when the supervisor (or `tandem pr`)
    /// last asked GitHub.
    pub pr: Option<PrStatus>,
    /// For a review session (`tandem review`), the id of the session it
    /// reviews: its findings go to that session's history.
    pub review_of: Option<String>,
    /// For a trial, its task's id and its number (1, 2, …).
    pub task_id: Option<String>,
    pub trial: Option<i64>,
    /// Paths (files or folders) its brief gives it; changing others is
    /// warned about. Empty: no limit.
    pub owned: Vec<String>,
    /// `tandem new --env KEY=VALUE` pairs, in order.
    pub env: Vec<(String, String)>,
    /// `tandem new --env-file` paths, read at each start of its agent.
    pub env_files: Vec<PathBuf>,
    /// Its `TANDEM_PORT` while its agent runs.
    pub port: Option<i64>,
    /// How its agent (and its hooks) run fenced in, at every start.
    pub sandbox: Option<SandboxMode>,
    /// The id of the session whose agent made this one (through `tandem
    /// mcp`, from its `TANDEM_SESSION_ID`); `None` for one a user made.
    #[serde(default)]
    pub creator: Option<String>,
}

/// One task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Random, 12 hex digits.
    pub id: String,
    pub repo_id: i64,
    /// Directory-safe name, unique among the repository's tasks; its
    /// trials are `<slug>-t1` … on branches `<prefix><slug>/t1` ….
    pub slug: String,
    pub objective: String,
    /// A shell command run in each trial's worktree to compare them.
    pub check: Option<String>,
    /// Paths the trials' briefs give them.
    pub owned: Vec<String>,
    pub status: TaskStatus,
    /// The promoted trial's session id.
    pub promoted: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A check command's result on one state of a trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The command's exit code; `None` when it was killed by a signal.
    pub exit_code: Option<i32>,
    /// The last lines of its output (stdout and stderr).
    pub output: String,
    pub duration_ms: i64,
    /// Unix seconds.
    pub at: i64,
}

/// How a session's agent is fenced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Under bubblewrap, on this machine's filesystem.
    Workspace,
    /// In a Docker or Podman container.
    Container,
}

impl SandboxMode {
    /// The name used in config, on the command line and in the store.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Workspace => "workspace",
            SandboxMode::Container => "container",
        }
    }

    /// Parses `none`, `workspace` or `container`: `None` for `none`.
    ///
    /// # Errors
    /// A one-line message naming the accepted values.
    pub fn parse_setting(s: &str) -> Result<Option<SandboxMode>, String> {
        match s {
            "none" | "" => Ok(None),
            other => other.parse().map(Some),
        }
    }
}

impl FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<SandboxMode, String> {
        match s {
            "workspace" => Ok(SandboxMode::Workspace),
            "container" => Ok(SandboxMode::Container),
            other => Err(format!("unknown sandbox mode {other:?}: use none, workspace or container")),
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
