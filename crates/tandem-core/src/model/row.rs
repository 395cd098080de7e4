//! One session as every front end shows it: the data of a listed row.
//! Its behaviour (how it is made, its group, its words) is in
//! `crate::rows`.

use std::path::PathBuf;

/// One session, as listed: the stored row with its state made live, its
/// git facts, conflict control's marks and what its agent last did.
///
/// `Default` is an empty row, for struct-update syntax in tests and
/// benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRow {
    pub id: String,
    /// The slug: what the user types.
    pub name: String,
    pub branch: String,
    /// The worktree.
    pub path: PathBuf,
    /// The agent's command line as the user gave it.
    pub agent: String,
    /// `starting`, `running`, `needs-input` (a permission), `asking` (a
    /// question in its last message), `idle` (these four as the agent
    /// reports them, for agents that do), `exited`, `failed` (exited
    /// with a non-zero code), `stopped`, `lost`, `creating` or
    /// `archived`: see `rows::listed_state`.
    pub state: String,
    /// Whether `state` is a guess from output activity (an agent that
    /// does not report its state).
    pub inferred: bool,
    /// Unix seconds since when it is in `state` (as far as known).
    pub since: i64,
    /// What a `needs-input` or `asking` agent asks; `None` in any other
    /// state.
    pub asking: Option<String>,
    /// The agent's own conversation id (Claude Code's session id, Codex's
    /// thread).
    pub agent_session: Option<String>,
    pub exit_code: Option<i32>,
    /// What was changed by hand, plainly (`worktree folder missing`, …);
    /// see `GitFacts::problem`.
    pub problem: Option<String>,
    /// The worktree's and branch's git facts, as the supervisor cached
    /// them.
    pub facts: super::GitFacts,
    /// The base ref as the user named it, and the commit it was when the
    /// session was made.
    pub base: String,
    pub base_commit: String,
    /// Unix seconds of the agent's last output, else of the last change
    /// to the session's row.
    pub last_activity: i64,
    pub pr_number: Option<i64>,
    /// The pull request as the supervisor last saw it.
    pub pr: Option<super::PrStatus>,
    /// The session this one reviews (`tandem review`), by name; `None`
    /// when it is not among the sessions listed with it.
    pub review_of: Option<String>,
    /// The session whose agent made this one (`tandem mcp`): its name
    /// when it is among the sessions listed with it, else its id; `None`
    /// for a session a user made.
    pub creator: Option<String>,
    /// Conflict control's findings for this session, when it has any.
    pub marks: Option<super::SessionConflicts>,
    /// Paths copied in by `.worktreeinclude`.
    pub included: Vec<String>,
    pub archive_ref: Option<String>,
    pub summary: Option<String>,
    pub archived_at: Option<i64>,
    /// Title, priority, task status, pin.
    pub meta: super::Meta,
    /// Unix seconds.
    pub created_at: i64,
    /// How its agent is fenced in.
    pub sandbox: Option<super::SandboxMode>,
    /// The agent's last message (from the history), for front ends that
    /// show it; `None` when not asked for (see `rows::rows`).
    pub last_message: Option<String>,
    /// The repository's folder, when the front end says (`tandem list
    /// --all`, `--json`); `None` otherwise.
    pub repo: Option<PathBuf>,
    /// The remote host it runs on (`tandem remote add`'s name); `None`
    /// for this machine. Set by the front end that merged the rows.
    #[serde(default)]
    pub host: Option<String>,
    /// For a remote host's row: Unix seconds the host last answered.
    /// Its `state` is `unreachable` while the host does not answer.
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// For an `unreachable` row: the state the host last reported.
    #[serde(default)]
    pub known_state: Option<String>,
}
