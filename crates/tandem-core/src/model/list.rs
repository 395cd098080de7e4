//! What `tandem list` and `tandem status` send and get back when the
//! supervisor renders and counts for them (issue 23): the view a client
//! asks for, the text it gets, the counts by group.

use serde::{Deserialize, Serialize};

use super::{Priority, TaskStatus};

/// What a session needs from the user; the agent view (and the web
/// dashboard) show groups in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Waits on a permission or a question.
    NeedsInput,
    /// Its agent exited with an error (a non-zero code, a signal).
    Error,
    Running,
    /// Its turn is done; it waits for the next prompt.
    Idle,
    /// Exited, stopped or lost: nothing runs.
    Done,
    Archived,
}

/// `tandem status`'s counts of this machine's sessions: `rows::tally`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Sessions by group, each group once, in the order first met (oldest
    /// session first); groups with none left out.
    pub groups: Vec<(Group, usize)>,
    /// Sessions counted.
    pub total: usize,
    /// The oldest session waiting on the user: its name, and its
    /// permission request when it has one.
    pub needs_input: Option<(String, Option<String>)>,
}

/// The order of rows after the pinned ones (`tandem list --sort`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Oldest first (the default).
    #[default]
    Created,
    /// Newest first.
    Age,
    Name,
    Priority,
}

/// How `tandem list` shows its rows: the filters, the order, the
/// columns, and what only the client's terminal knows (its width, colour,
/// the home folder paths are shown under).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListView {
    /// A JSON array of objects (`rows::columns::json`) instead of a table.
    pub json: bool,
    /// Archived sessions, with their summaries.
    pub archived: bool,
    /// Rows of every repository (says "in any repository" when none).
    pub all: bool,
    /// Only these task statuses; empty: any.
    pub statuses: Vec<TaskStatus>,
    /// Only these priorities; empty: any.
    pub priorities: Vec<Priority>,
    /// Only pinned sessions.
    pub pinned: bool,
    pub sort: Sort,
    /// `--columns`, as JSON keys of table columns (`rows::table::column_key`);
    /// empty: the table's own choice. Unknown keys are left out.
    pub columns: Vec<String>,
    /// Characters a line may take; `None`: no limit (output to a pipe).
    pub width: Option<usize>,
    /// SGR colours in the table.
    pub colour: bool,
    /// The home folder paths under it are shown as `~/…`; `None`, empty or
    /// `/`: paths in full.
    pub home: Option<String>,
    /// The client's config variables (`config::config_env`): the
    /// `supervisor.quiet_secs` that infers states is the client's own.
    pub env: Vec<(String, String)>,
}

/// One rendering: what goes to stdout, and notes for stderr (each
/// already made printable with `text::visible`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub text: String,
    pub notes: Vec<String>,
}
