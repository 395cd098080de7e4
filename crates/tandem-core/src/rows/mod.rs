//! One session as every front end shows it: [`SessionRow`].
//!
//! `tandem list` (table and JSON), the agent view and, after them, the web
//! dashboard and the MCP server all render the same row, built here from
//! what the supervisor answers to [`crate::protocol::Request::List`] (the
//! stored session, its cached git facts, conflict control's marks) plus
//! what only this machine's files say (the time of the agent's last
//! output, from its PTY log) and, for front ends that show it, the
//! agent's last message from the history.
//!
//! What the row shows and how is in [`columns`]: one registry entry per
//! field, with its JSON key and, when it is a column of `tandem list`'s
//! table, its header and cell. Adding a column is one entry there plus,
//! when it needs a fact the row lacks, one field here.

pub mod columns;
pub mod table;

use std::collections::HashMap;

use crate::conflicts::{Report, SessionConflicts};
use crate::host::screen::PtyLog;
use crate::paths::Paths;
use crate::session::facts::{self, DiffStat, GitFacts};
use crate::store::{Activity, Session, SessionState};

pub use crate::model::{Group, Tally};

impl Group {
    /// Every group, in display order.
    pub const ALL: [Group; 6] =
        [Group::NeedsInput, Group::Error, Group::Running, Group::Idle, Group::Done, Group::Archived];

    /// The group's heading.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Group::NeedsInput => "NEEDS INPUT",
            Group::Error => "ERROR",
            Group::Running => "RUNNING",
            Group::Idle => "IDLE",
            Group::Done => "DONE",
            Group::Archived => "ARCHIVED",
        }
    }

    /// The group's key in JSON: `needs_input`, `error`, `running`,
    /// `idle`, `done`, `archived`.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Group::NeedsInput => "needs_input",
            Group::Error => "error",
            Group::Running => "running",
            Group::Idle => "idle",
            Group::Done => "done",
            Group::Archived => "archived",
        }
    }

    /// The group of a session in listed state `state` (as
    /// [`SessionRow::state`] names it).
    #[must_use]
    pub fn of(state: &str) -> Group {
        match state {
            "needs-input" | "asking" => Group::NeedsInput,
            "failed" => Group::Error,
            "running" | "starting" | "creating" => Group::Running,
            "idle" => Group::Idle,
            "archived" => Group::Archived,
            _ => Group::Done,
        }
    }
}

// The row is plain data the wire carries (a remote host's rows): it
// lives in [`crate::model`]; its behaviour is here.
pub use crate::model::SessionRow;

impl SessionRow {
    /// The row of `session` with `facts`, at `now` (Unix seconds).
    /// `quiet`: `supervisor.quiet_secs`, after which an agent that does
    /// not report its state is taken to be idle. `marks`: conflict
    /// control's findings; `names`: session id → name, for `review_of` and
    /// `creator`.
    #[must_use]
    pub fn new(
        paths: &Paths,
        session: &Session,
        facts: GitFacts,
        marks: Option<SessionConflicts>,
        names: &HashMap<&str, &str>,
        quiet: u64,
        now: i64,
    ) -> SessionRow {
        // One `stat` of the PTY log for both (200 rows: 200 stats).
        SessionRow::with_output(session, output_time(paths, session), facts, marks, names, quiet, now)
    }

    /// [`SessionRow::new`] with the PTY log's mtime (`output`, Unix
    /// seconds) already read.
    fn with_output(
        session: &Session,
        output: Option<i64>,
        facts: GitFacts,
        marks: Option<SessionConflicts>,
        names: &HashMap<&str, &str>,
        quiet: u64,
        now: i64,
    ) -> SessionRow {
        let mut s = session.clone();
        s.state = facts::live_state(&s);
        let (state, inferred) = listed_state_given(&s, output, now, quiet);
        let last_activity = output.unwrap_or(s.updated_at).max(s.updated_at);
        SessionRow {
            state: state.to_owned(),
            inferred,
            // An inferred state holds since the last output.
            since: if inferred { last_activity } else { s.activity_at.unwrap_or(s.updated_at) },
            asking: asking(&s).map(str::to_owned),
            problem: facts.problem(&s),
            facts,
            last_activity,
            review_of: s.review_of.as_deref().and_then(|id| names.get(id)).map(|name| (*name).to_owned()),
            creator: s.creator.as_deref().map(|id| names.get(id).map_or(id, |name| *name).to_owned()),
            marks: marks.filter(|m| m.name == s.slug),
            id: s.id,
            name: s.slug,
            branch: s.branch,
            path: s.path,
            agent: s.agent,
            agent_session: s.agent_session,
            exit_code: s.exit_code,
            base: s.base_ref,
            base_commit: s.base_commit,
            pr_number: s.pr_number,
            pr: s.pr,
            included: s.included,
            archive_ref: s.archive_ref,
            summary: s.summary,
            archived_at: s.archived_at,
            meta: s.meta,
            created_at: s.created_at,
            sandbox: s.sandbox,
            last_message: None,
            repo: None,
            host: None,
            last_seen: None,
            known_state: None,
        }
    }

    /// The group it shows in.
    #[must_use]
    pub fn group(&self) -> Group {
        // As [`SessionRow::state_text`]: an agent whose state is guessed
        // (a shell) that reported an ask through a hook needs input.
        if self.state == "running" && self.asking.is_some() {
            return Group::NeedsInput;
        }
        Group::of(&self.state)
    }

    /// What removing it would lose (kept in a snapshot ref with
    /// `--force`): uncommitted files and commits on no other branch, in
    /// words; `None` when nothing.
    #[must_use]
    pub fn unsaved(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some((changed, untracked)) = self.changes() {
            if changed > 0 {
                parts.push(plural(changed, "changed file"));
            }
            if untracked > 0 {
                parts.push(plural(untracked, "untracked file"));
            }
        }
        if let Some(ahead) = self.ahead().filter(|a| *a > 0) {
            parts.push(format!("{} not on {}", plural(ahead, "commit"), self.base));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Whether the worktree is there to look at.
    #[must_use]
    pub fn worktree_exists(&self) -> bool {
        self.facts.worktree.exists
    }

    /// Changed tracked files and untracked files; `None` when the
    /// worktree is gone.
    #[must_use]
    pub fn changes(&self) -> Option<(u32, u32)> {
        let w = &self.facts.worktree;
        w.exists.then_some((w.changed, w.untracked))
    }

    /// Commits on the branch not on the base, and on the base not on the
    /// branch.
    #[must_use]
    pub fn ahead(&self) -> Option<u32> {
        self.facts.refs.ahead
    }

    /// See [`SessionRow::ahead`].
    #[must_use]
    pub fn behind(&self) -> Option<u32> {
        self.facts.refs.behind
    }

    /// Committed and uncommitted changes against the base.
    #[must_use]
    pub fn diffstat(&self) -> DiffStat {
        self.facts.diffstat()
    }

    /// The state in a few words: `running`, `idle (inferred)`,
    /// `needs-input: Bash: cargo test`, `asking: Which database?` (the
    /// question cut to 40 characters), `exited (0)`, `failed (exit 1)`,
    /// `stopped`, `lost`, …
    #[must_use]
    pub fn state_text(&self) -> String {
        if let Some(text) = self.unreachable_text() {
            return text;
        }
        state_text(&self.state, self.inferred, self.exit_code, self.asking.as_deref())
    }

    /// The state's words without the question: [`SessionRow::state_text`]
    /// up to its `:`, for front ends that show the question apart (the
    /// agent view). Every front end says a state with these words.
    #[must_use]
    pub fn state_word(&self) -> String {
        if let Some(text) = self.unreachable_text() {
            return text;
        }
        state_word(&self.state, self.inferred, self.exit_code)
    }

    /// An `unreachable` remote row's words: `unreachable (was running,
    /// seen 3m ago)`.
    fn unreachable_text(&self) -> Option<String> {
        if self.state != "unreachable" {
            return None;
        }
        let was = self.known_state.as_deref().map(|s| format!("was {s}, ")).unwrap_or_default();
        let seen = self.last_seen.map_or_else(
            || "never seen".to_owned(),
            |t| format!("seen {} ago", crate::short_age(crate::unix_now() - t)),
        );
        Some(format!("unreachable ({was}{seen})"))
    }

    /// Whether it waits on a permission decision (`tandem approve` /
    /// `deny`), not on an answer to a question.
    #[must_use]
    pub fn awaits_permission(&self) -> bool {
        // An agent whose state is inferred (a shell) may still report an
        // ask through a hook: that is a permission too, not a question.
        self.state == "needs-input" || (self.asking.is_some() && self.state != "asking")
    }

    /// The pull request in a few words: `#12 open, checks passing,
    /// approved`, `#12` before the supervisor has looked; `None` when it
    /// has none.
    #[must_use]
    pub fn pr_text(&self) -> Option<String> {
        match (&self.pr, self.pr_number) {
            (Some(pr), _) => Some(pr.line()),
            (None, Some(n)) => Some(format!("#{n}")),
            (None, None) => None,
        }
    }

    /// Conflict control's marks in a few words: `conflicts with a, b;
    /// overlaps c; conflicts with main; 2 file(s) outside owned paths`;
    /// `None` when none.
    #[must_use]
    pub fn conflict_text(&self) -> Option<String> {
        let m = self.marks.as_ref()?;
        let mut parts = Vec::new();
        if !m.conflicts_with.is_empty() {
            parts.push(format!("conflicts with {}", m.conflicts_with.join(", ")));
        }
        let overlaps: Vec<&str> =
            m.overlaps_with.iter().filter(|o| !m.conflicts_with.contains(o)).map(String::as_str).collect();
        if !overlaps.is_empty() {
            parts.push(format!("overlaps {}", overlaps.join(", ")));
        }
        if m.base_conflicts.is_some() {
            parts.push(format!("conflicts with {}", m.base));
        }
        if !m.outside_owned.is_empty() {
            parts.push(format!("{} file(s) outside owned paths", m.outside_owned.len()));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The rows of one answer to [`crate::protocol::Request::List`]:
/// `sessions[i]` with `facts[i]`, its marks from `conflicts` and its
/// agent's last message `messages[i]` (none where `messages` is short),
/// at `now`.
#[must_use]
pub fn rows(
    paths: &Paths,
    sessions: &[Session],
    facts: Vec<GitFacts>,
    conflicts: &Report,
    quiet: u64,
    now: i64,
    messages: Vec<Option<String>>,
) -> Vec<SessionRow> {
    let names: HashMap<&str, &str> = sessions.iter().map(|s| (s.id.as_str(), s.slug.as_str())).collect();
    let marks: HashMap<&str, &SessionConflicts> = conflicts.sessions.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut messages = messages.into_iter();
    let logs = LogTimes::open(paths);
    sessions
        .iter()
        .zip(facts)
        .map(|(s, f)| {
            let output = logs.of(s);
            let mark = marks.get(s.slug.as_str()).map(|m| (*m).clone());
            let mut row = SessionRow::with_output(s, output, f, mark, &names, quiet, now);
            row.last_message = messages.next().flatten();
            row
        })
        .collect()
}

/// The states whose sessions `tandem status` counts in every repository:
/// all but archived ones.
pub const TALLIED: [SessionState; 5] =
    [SessionState::Creating, SessionState::Running, SessionState::Exited, SessionState::Stopped, SessionState::Lost];

/// The live sessions of `sessions` (archived ones left out) by the group
/// `tandem list` shows each in at `now` (Unix seconds), with `quiet`
/// (`supervisor.quiet_secs`) for agents whose state is inferred. One
/// liveness check and one PTY log `stat` per running session. Both
/// `tandem status` (reading the store) and the supervisor
/// ([`crate::protocol::Request::Tally`]) count with it.
#[must_use]
pub fn tally(paths: &Paths, sessions: &[Session], now: i64, quiet: u64) -> Tally {
    let mut live: Vec<&Session> = sessions.iter().filter(|s| s.state != SessionState::Archived).collect();
    live.sort_by_key(|s| s.created_at);
    let mut tally = Tally { total: live.len(), ..Tally::default() };
    let logs = LogTimes::open(paths);
    for s in live {
        let state_now = facts::live_state(s);
        let (state, _) = listed_live_state_by(s, state_now, now, quiet, |s| logs.of(s));
        // A running agent that asks (also one whose state is inferred)
        // needs input, as `tandem list` says.
        let asks = state_now == SessionState::Running && s.activity == Some(Activity::NeedsInput);
        let group = if asks { Group::NeedsInput } else { Group::of(state) };
        match tally.groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, n)) => *n += 1,
            None => tally.groups.push((group, 1)),
        }
        if group == Group::NeedsInput && tally.needs_input.is_none() {
            let asking = s.asking.clone().filter(|_| s.activity == Some(Activity::NeedsInput));
            tally.needs_input = Some((s.slug.clone(), asking));
        }
    }
    tally
}

/// A stored session's state in a few words, as [`SessionRow::state_text`]
/// says it, for commands that have the session but no row (`stop`,
/// `attach`): a reported state, never an inferred one.
#[must_use]
pub fn session_state_text(s: &Session) -> String {
    let mut live = s.clone();
    live.state = facts::live_state(s);
    let exit_code = s.exit_code.filter(|_| live.state == SessionState::Exited);
    state_text(facts::reported_state(&live), false, exit_code, asking(s))
}

/// What the session's agent asks: its permission request or its
/// question, while it waits on it.
fn asking(s: &Session) -> Option<&str> {
    s.asking.as_deref().filter(|_| matches!(s.activity, Some(Activity::NeedsInput | Activity::Asking)))
}

/// The one place a state becomes words (see [`SessionRow::state_text`]).
fn state_text(state: &str, inferred: bool, exit_code: Option<i32>, asking: Option<&str>) -> String {
    match (state, asking) {
        ("asking", Some(asking)) => format!("asking: {}", truncate(asking, 40)),
        // An agent whose state is inferred can still say what it asks
        // (a hook event): the question wins over the guess.
        ("needs-input" | "running", Some(asking)) => format!("needs-input: {}", truncate(asking, 40)),
        _ => state_word(state, inferred, exit_code),
    }
}

/// A state's words without its question (see [`SessionRow::state_word`]).
fn state_word(state: &str, inferred: bool, exit_code: Option<i32>) -> String {
    match (state, exit_code) {
        ("idle", _) if inferred => "idle (inferred)".to_owned(),
        ("failed", Some(code)) => format!("failed (exit {code})"),
        ("exited", Some(code)) => format!("exited ({code})"),
        (state, _) => state.to_owned(),
    }
}

/// Whether `row` is a sub-session of another of `rows`: its creator
/// ([`SessionRow::creator`]) is listed with it.
#[must_use]
pub fn is_sub_session(row: &SessionRow, rows: &[SessionRow]) -> bool {
    row.creator.as_deref().is_some_and(|c| c != row.name && rows.iter().any(|r| r.name == c))
}

/// `rows` in their order, except that each sub-session comes right after
/// its creator (and that creator's earlier sub-sessions), so an
/// orchestrator's sessions list under it. A sub-session whose creator is
/// not listed keeps its place.
#[must_use]
pub fn under_creators(rows: Vec<SessionRow>) -> Vec<SessionRow> {
    let subs: Vec<bool> = rows.iter().map(|r| is_sub_session(r, &rows)).collect();
    let mut children: HashMap<String, Vec<SessionRow>> = HashMap::new();
    let mut top = Vec::new();
    for (row, sub) in rows.into_iter().zip(subs) {
        match row.creator.clone().filter(|_| sub) {
            Some(creator) => children.entry(creator).or_default().push(row),
            None => top.push(row),
        }
    }
    let mut out = Vec::with_capacity(top.len());
    let mut stack: Vec<SessionRow> = top.into_iter().rev().collect();
    while let Some(row) = stack.pop() {
        if let Some(kids) = children.remove(&row.name) {
            stack.extend(kids.into_iter().rev());
        }
        out.push(row);
    }
    // Creators that are each other's (cannot happen; kept, not lost).
    let mut rest: Vec<SessionRow> = children.into_values().flatten().collect();
    rest.sort_by_key(|r| r.created_at);
    out.extend(rest);
    out
}

/// The state to list and whether it is inferred: an agent that reports
/// its state says it; for any other running agent, output in the last
/// `quiet` seconds (`supervisor.quiet_secs`) means `running`, none means
/// `idle` (a guess, named as such). `session.state` must already be live
/// ([`facts::live_state`]).
#[must_use]
pub fn listed_state(paths: &Paths, s: &Session, now: i64, quiet: u64) -> (&'static str, bool) {
    let reports = crate::agent::reports_state(&s.agent);
    let state = facts::reported_state_of(facts::live_state(s), s, reports);
    if state != "running" || reports {
        return (state, false);
    }
    inferred_state(s, output_time(paths, s), now, quiet)
}

/// [`listed_state`] of a session whose `state` is already live
/// ([`facts::live_state`]): its process is not looked at again.
#[must_use]
pub fn listed_live_state(paths: &Paths, s: &Session, now: i64, quiet: u64) -> (&'static str, bool) {
    listed_live_state_by(s, s.state, now, quiet, |s| output_time(paths, s))
}

/// [`listed_live_state`] of `s` in live state `live`, reading the PTY
/// log's mtime with `output`, only when the state is inferred.
fn listed_live_state_by(
    s: &Session,
    live: SessionState,
    now: i64,
    quiet: u64,
    output: impl FnOnce(&Session) -> Option<i64>,
) -> (&'static str, bool) {
    let reports = crate::agent::reports_state(&s.agent);
    let state = facts::reported_state_of(live, s, reports);
    if state != "running" || reports {
        return (state, false);
    }
    inferred_state(s, output(s), now, quiet)
}

/// [`listed_live_state`] with the PTY log's mtime (`output`) already read.
fn listed_state_given(s: &Session, output: Option<i64>, now: i64, quiet: u64) -> (&'static str, bool) {
    let reports = crate::agent::reports_state(&s.agent);
    let state = facts::reported_state_of(s.state, s, reports);
    if state != "running" || reports {
        return (state, false);
    }
    inferred_state(s, output, now, quiet)
}

/// A running agent that does not report its state: `running` when it
/// printed in the last `quiet` seconds, else `idle`; inferred.
fn inferred_state(s: &Session, output: Option<i64>, now: i64, quiet: u64) -> (&'static str, bool) {
    let last_output = output.unwrap_or(s.created_at);
    let quiet = i64::try_from(quiet).unwrap_or(i64::MAX);
    (if now - last_output >= quiet { "idle" } else { "running" }, true)
}

/// Unix seconds of the agent's last output, else of the row's last
/// change, whichever is later.
#[must_use]
pub fn last_activity(paths: &Paths, s: &Session) -> i64 {
    output_time(paths, s).unwrap_or(s.updated_at).max(s.updated_at)
}

/// Unix seconds of the last write to the session's PTY log.
fn output_time(paths: &Paths, s: &Session) -> Option<i64> {
    std::fs::metadata(PtyLog::path(&paths.session_dir(&s.id)))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

/// [`output_time`] of many sessions: the folder of every session's files
/// ([`Paths::session_dir`]'s parent) is opened once, so each `stat` walks
/// two names, not the whole path (200 rows: a fifth of a supervisor's
/// `list`, issue 23).
struct LogTimes<'a> {
    paths: &'a Paths,
    /// `None` when it cannot be opened: each time is then read by path.
    dir: Option<std::fs::File>,
}

impl LogTimes<'_> {
    fn open(paths: &Paths) -> LogTimes<'_> {
        LogTimes { paths, dir: std::fs::File::open(paths.state_dir.join("sessions")).ok() }
    }

    /// Unix seconds of the last write to `s`'s PTY log.
    fn of(&self, s: &Session) -> Option<i64> {
        let Some(dir) = &self.dir else {
            return output_time(self.paths, s);
        };
        let log = std::path::Path::new(&s.id).join(crate::host::screen::PTY_LOG);
        // As [`output_time`]: a time before 1970 is none.
        nix::sys::stat::fstatat(dir, &log, nix::fcntl::AtFlags::empty()).ok().map(|st| st.st_mtime).filter(|t| *t >= 0)
    }
}

/// `text` cut to `max` characters, the last one `…` when cut.
#[must_use]
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() > max { text.chars().take(max - 1).chain(['…']).collect() } else { text.to_owned() }
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}
