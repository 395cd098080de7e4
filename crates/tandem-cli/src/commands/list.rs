use std::borrow::Cow;
use std::io::Write;

use serde::Serialize;
use tandem_core::host::screen::PtyLog;
use tandem_core::protocol::{Request, Response};
use tandem_core::session::facts::{self, DiffStat, GitFacts};
use tandem_core::store::{Activity, Priority, Session, SessionState, TaskStatus};

use tandem_core::short_age as age;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// List the sessions of this repository: pinned first, then oldest first
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Print a JSON array of objects instead of a table
    #[arg(long)]
    json: bool,
    /// Only sessions with this task status (repeat or comma-separate)
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// Only sessions with this priority (repeat or comma-separate)
    #[arg(long, value_delimiter = ',')]
    priority: Vec<String>,
    /// Only pinned sessions
    #[arg(long)]
    pinned: bool,
    /// Order after the pinned ones: age (newest first), name or priority
    #[arg(long, default_value = "created")]
    sort: String,
    /// Archived sessions instead, with their summaries
    #[arg(long)]
    archived: bool,
    /// Only the names, one per line (for scripts and shell completion)
    #[arg(long, conflicts_with = "json")]
    names: bool,
}

/// One row of `tandem list --json`.
#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    id: &'a str,
    branch: &'a str,
    path: &'a std::path::Path,
    agent: &'a str,
    /// `starting`, `running`, `needs-input`, `idle` (the last three as
    /// the agent reports them, for agents that do), `exited`, `stopped`,
    /// `lost`, `creating` or `archived`.
    state: &'static str,
    /// Whether `state` is a guess from output activity (an agent that
    /// does not report its state: `idle` after `supervisor.quiet_secs`
    /// without output, else `running`).
    state_inferred: bool,
    /// What a `needs-input` agent asks.
    asking: Option<&'a str>,
    /// The agent's own conversation id (Claude Code's session id).
    agent_session: Option<&'a str>,
    exit_code: Option<i32>,
    /// What was changed by hand, plainly (`worktree folder missing`, …).
    problem: Option<String>,
    dirty: Option<bool>,
    /// Changed tracked files and untracked files.
    changed: u32,
    untracked: u32,
    ahead: Option<u32>,
    behind: Option<u32>,
    base: &'a str,
    base_commit: &'a str,
    /// The remote's default branch and how far behind it the branch is.
    remote_base: Option<&'a str>,
    behind_remote: Option<u32>,
    /// Committed and uncommitted changes against the base.
    diffstat: DiffStat,
    /// Unix seconds of the agent's last output (else of the last change
    /// to the session's row).
    last_activity: i64,
    pr_number: Option<i64>,
    /// The pull request as the supervisor last saw it: number, url,
    /// state (open, draft, merged, closed), checks, review.
    pr: Option<&'a tandem_core::github::PrStatus>,
    /// The session this one reviews (`tandem review`), by name.
    review_of: Option<String>,
    /// Conflict control: sessions it shares changed paths with, those it
    /// would conflict with, paths that would conflict with its base, and
    /// changed paths outside the ones its brief owns.
    overlaps_with: &'a [String],
    conflicts_with: &'a [String],
    base_conflicts: Option<&'a [String]>,
    outside_owned: &'a [String],
    /// Paths copied in by `.worktreeinclude`.
    included: &'a [String],
    archive_ref: Option<&'a str>,
    summary: Option<&'a str>,
    archived_at: Option<i64>,
    title: Option<&'a str>,
    priority: Priority,
    status: TaskStatus,
    pinned: bool,
    /// Unix seconds.
    created_at: i64,
    age_seconds: i64,
    /// How its agent is fenced in: `workspace`, `container`, or null.
    sandbox: Option<tandem_core::sandbox::Mode>,
}

#[derive(Clone, Copy)]
enum Sort {
    Created,
    Age,
    Name,
    Priority,
}

pub fn run(cx: &Context, args: &ListArgs) -> Result<(), CliError> {
    // Check every filter before reading anything.
    let statuses: Vec<TaskStatus> =
        args.status.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(CliError::User)?;
    let priorities: Vec<Priority> =
        args.priority.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(CliError::User)?;
    let sort = match args.sort.as_str() {
        "created" => Sort::Created,
        "age" => Sort::Age,
        "name" => Sort::Name,
        "priority" => Sort::Priority,
        other => {
            return Err(CliError::user(format!("unknown sort `{other}`; use one of age, name, priority, created")));
        }
    };
    let (repo, config) = cx.repo()?;
    if args.names {
        let store = cx.store()?;
        let sessions = match store.find_repo(&repo.common_dir)? {
            Some(id) => store.sessions(id)?,
            None => Vec::new(),
        };
        let mut out = std::io::stdout().lock();
        for s in sessions.iter().filter(|s| (s.state == SessionState::Archived) == args.archived) {
            writeln!(out, "{}", visible(&s.slug))?;
        }
        return Ok(());
    }
    let request = Request::List { cwd: cx.cwd.clone(), archived: args.archived };
    let Response::Listed { sessions, facts, notes, conflicts, conflicts_current } =
        cx.supervisor()?.request(&request)?
    else {
        return Err(CliError::Internal("the supervisor answered list with something else".into()));
    };
    for note in &notes {
        eprintln!("note: {}", visible(note));
    }
    if !conflicts_current && !conflicts.sessions.is_empty() && !args.archived && !args.json {
        eprintln!("note: conflict marks are being brought up to date; `tandem conflicts` has them now");
    }
    let mut rows: Vec<(Session, GitFacts)> = sessions
        .into_iter()
        .zip(facts)
        .filter(|(s, _)| {
            (statuses.is_empty() || statuses.contains(&s.meta.status))
                && (priorities.is_empty() || priorities.contains(&s.meta.priority))
                && (!args.pinned || s.meta.pinned)
        })
        .collect();
    order(&mut rows, sort);
    for (s, _) in &mut rows {
        s.state = facts::live_state(s);
    }
    let now = tandem_core::unix_now();
    let activity: Vec<i64> = rows.iter().map(|(s, _)| last_activity(cx, s)).collect();
    let quiet = config.supervisor.quiet_secs;
    let states: Vec<(&'static str, bool)> = rows.iter().map(|(s, _)| listed_state(cx, s, now, quiet)).collect();
    let mut out = std::io::stdout().lock();
    let marks: std::collections::HashMap<&str, &tandem_core::session::conflicts::SessionConflicts> =
        conflicts.sessions.iter().map(|c| (c.name.as_str(), c)).collect();
    let names: std::collections::HashMap<String, String> =
        rows.iter().map(|(s, _)| (s.id.clone(), s.slug.clone())).collect();
    if args.json {
        let json: Vec<Row<'_>> = rows
            .iter()
            .zip(&activity)
            .zip(&states)
            .map(|(((s, f), &last_activity), &(state, state_inferred))| Row {
                name: &s.slug,
                id: &s.id,
                branch: &s.branch,
                path: &s.path,
                agent: &s.agent,
                state,
                state_inferred,
                asking: s.asking.as_deref().filter(|_| s.activity == Some(Activity::NeedsInput)),
                agent_session: s.agent_session.as_deref(),
                exit_code: s.exit_code,
                problem: f.problem(s),
                dirty: f.dirty(),
                changed: f.worktree.changed,
                untracked: f.worktree.untracked,
                ahead: f.refs.ahead,
                behind: f.refs.behind,
                base: &s.base_ref,
                base_commit: &s.base_commit,
                remote_base: f.refs.remote_base.as_deref(),
                behind_remote: f.refs.behind_remote,
                diffstat: f.diffstat(),
                last_activity,
                pr_number: s.pr_number,
                pr: s.pr.as_ref(),
                review_of: s.review_of.as_ref().and_then(|id| names.get(id).cloned()),
                overlaps_with: marks.get(s.slug.as_str()).map_or(&[], |m| m.overlaps_with.as_slice()),
                conflicts_with: marks.get(s.slug.as_str()).map_or(&[], |m| m.conflicts_with.as_slice()),
                base_conflicts: marks.get(s.slug.as_str()).and_then(|m| m.base_conflicts.as_deref()),
                outside_owned: marks.get(s.slug.as_str()).map_or(&[], |m| m.outside_owned.as_slice()),
                included: &s.included,
                archive_ref: s.archive_ref.as_deref(),
                summary: s.summary.as_deref(),
                archived_at: s.archived_at,
                title: s.meta.title.as_deref(),
                priority: s.meta.priority,
                status: s.meta.status,
                pinned: s.meta.pinned,
                created_at: s.created_at,
                age_seconds: now - s.created_at,
                sandbox: s.sandbox,
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &json).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if rows.is_empty() {
        let filtered = !statuses.is_empty() || !priorities.is_empty() || args.pinned;
        if filtered {
            writeln!(out, "no sessions match")?;
        } else if args.archived {
            writeln!(out, "no archived sessions in this repository")?;
        } else {
            writeln!(out, "no sessions in this repository; start one with `tandem new`")?;
        }
        return Ok(());
    }
    if args.archived {
        write_archived(&mut out, &rows, now)?;
    } else {
        write_table(&mut out, &rows, &activity, &states, now, &marks)?;
        for (s, _) in &rows {
            if s.pr.as_ref().is_some_and(|p| p.state == tandem_core::github::PrState::Merged) {
                eprintln!(
                    "note: {}'s pull request #{} was merged; `tandem archive {}` puts it away",
                    s.slug,
                    s.pr_number.unwrap_or_default(),
                    s.slug
                );
            }
        }
    }
    Ok(())
}

/// Unix seconds of the agent's last output, else of the row's last change.
/// The state to list and whether it is inferred: an agent that reports
/// its state says it; for any other running agent, output in the last
/// `quiet` seconds (`supervisor.quiet_secs`) means `running`, none means
/// `idle` (a guess, named as such in `state_inferred`).
pub fn listed_state(cx: &Context, s: &Session, now: i64, quiet: u64) -> (&'static str, bool) {
    let state = facts::reported_state(s);
    if state != "running" || tandem_core::agent::reports_state(&s.agent) {
        return (state, false);
    }
    let last_output = std::fs::metadata(PtyLog::path(&cx.paths.session_dir(&s.id)))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(s.created_at);
    let quiet = i64::try_from(quiet).unwrap_or(i64::MAX);
    (if now - last_output >= quiet { "idle" } else { "running" }, true)
}

pub fn last_activity(cx: &Context, s: &Session) -> i64 {
    std::fs::metadata(PtyLog::path(&cx.paths.session_dir(&s.id)))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(s.updated_at)
        .max(s.updated_at)
}

/// Pinned first, then by `sort`, ties broken by creation order.
/// `sessions` come oldest first; the sort is stable.
fn order(sessions: &mut [(Session, GitFacts)], sort: Sort) {
    if matches!(sort, Sort::Age) {
        // Newest first, also among sessions made in the same second.
        sessions.reverse();
    }
    sessions.sort_by(|(a, _), (b, _)| {
        b.meta.pinned.cmp(&a.meta.pinned).then_with(|| match sort {
            Sort::Created => a.created_at.cmp(&b.created_at),
            Sort::Age => b.created_at.cmp(&a.created_at),
            Sort::Name => a.slug.cmp(&b.slug),
            Sort::Priority => a.meta.priority.cmp(&b.meta.priority),
        })
    });
}

/// `states`: as [`listed_state`] says, per row.
fn write_table(
    out: &mut impl Write,
    rows: &[(Session, GitFacts)],
    activity: &[i64],
    states: &[(&str, bool)],
    now: i64,
    marks: &std::collections::HashMap<&str, &tandem_core::session::conflicts::SessionConflicts>,
) -> std::io::Result<()> {
    // Title, priority and remote columns only when some session has one.
    let titles = rows.iter().any(|(s, _)| s.meta.title.is_some());
    let priorities = rows.iter().any(|(s, _)| s.meta.priority != Priority::None);
    let remote = rows.iter().find_map(|(_, f)| f.refs.remote_base.clone());
    let prs = rows.iter().any(|(s, _)| s.pr_number.is_some());
    let clash = |s: &Session| marks.get(s.slug.as_str()).map(|m| conflict_text(m)).filter(|t| !t.is_empty());
    let clashes = rows.iter().any(|(s, _)| clash(s).is_some());
    let sandboxes = rows.iter().any(|(s, _)| s.sandbox.is_some());
    let mut header = vec!["NAME".to_owned(), "BRANCH".to_owned()];
    if titles {
        header.push("TITLE".to_owned());
    }
    header.extend(["AGENT", "STATE", "STATUS"].map(str::to_owned));
    if priorities {
        header.push("PRIORITY".to_owned());
    }
    header.extend(["CHANGES", "DIFF", "BASE"].map(str::to_owned));
    if let Some(remote) = &remote {
        header.push(remote.to_uppercase());
    }
    if prs {
        header.push("PR".to_owned());
    }
    if clashes {
        header.push("CONFLICTS".to_owned());
    }
    if sandboxes {
        header.push("SANDBOX".to_owned());
    }
    header.extend(["ACTIVE", "AGE", "PATH"].map(str::to_owned));
    let mut table: Vec<Vec<String>> = vec![header.clone()];
    for (((s, f), &active), &(listed, inferred)) in rows.iter().zip(activity).zip(states) {
        let name = if s.meta.pinned { format!("{} *", s.slug) } else { s.slug.clone() };
        let mut row = vec![name, s.branch.clone()];
        if titles {
            row.push(truncate(s.meta.title.as_deref().unwrap_or(""), 32));
        }
        let shown = if inferred && listed == "idle" { "idle (inferred)".to_owned() } else { state_text(s) };
        let state = match f.problem(s) {
            Some(problem) => format!("{shown}: {problem}"),
            None => shown,
        };
        row.extend([truncate(&s.agent, 24), state, s.meta.status.as_str().to_owned()]);
        if priorities {
            row.push(s.meta.priority.as_str().to_owned());
        }
        let changes = match (f.worktree.exists, f.worktree.changed, f.worktree.untracked) {
            (false, _, _) => "?".to_owned(),
            (true, 0, 0) => "clean".to_owned(),
            (true, c, 0) => format!("{c}M"),
            (true, 0, u) => format!("{u}?"),
            (true, c, u) => format!("{c}M {u}?"),
        };
        let d = f.diffstat();
        let diff =
            if d == DiffStat::default() { "-".to_owned() } else { format!("+{} -{}", d.insertions, d.deletions) };
        let counts = match (f.refs.ahead, f.refs.behind) {
            (Some(a), Some(b)) => format!("+{a} -{b}"),
            _ => "?".to_owned(),
        };
        row.extend([changes, diff, counts]);
        if remote.is_some() {
            row.push(f.refs.behind_remote.map_or_else(|| "?".to_owned(), |b| format!("-{b}")));
        }
        if prs {
            row.push(pr_text(s));
        }
        if clashes {
            row.push(clash(s).unwrap_or_else(|| "-".to_owned()));
        }
        if sandboxes {
            row.push(s.sandbox.map_or("-", tandem_core::sandbox::Mode::as_str).to_owned());
        }
        row.extend([age(now - active), age(now - s.created_at), s.path.display().to_string()]);
        table.push(row);
    }
    write_columns(out, &table)
}

/// Conflict control's marks for a session in a few words: `conflicts
/// with a, b; overlaps c; base; outside owned` (empty when none).
pub fn conflict_text(m: &tandem_core::session::conflicts::SessionConflicts) -> String {
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
    parts.join("; ")
}

/// A session's pull request in a few words: `#12 open, checks passing,
/// approved`, `#12` before the supervisor has looked, `-` for none.
pub fn pr_text(s: &Session) -> String {
    match (&s.pr, s.pr_number) {
        (Some(pr), _) => pr.line(),
        (None, Some(n)) => format!("#{n}"),
        (None, None) => "-".to_owned(),
    }
}

fn write_archived(out: &mut impl Write, rows: &[(Session, GitFacts)], now: i64) -> std::io::Result<()> {
    let mut table = vec![["NAME", "BRANCH", "ARCHIVED", "BASE", "SNAPSHOT", "SUMMARY"].map(str::to_owned).to_vec()];
    for (s, f) in rows {
        let counts = match (f.refs.ahead, f.refs.behind) {
            (Some(a), Some(b)) => format!("+{a} -{b}"),
            _ => "branch gone".to_owned(),
        };
        table.push(vec![
            s.slug.clone(),
            s.branch.clone(),
            s.archived_at.map_or_else(|| "?".to_owned(), |t| format!("{} ago", age(now - t))),
            counts,
            if s.archive_ref.is_some() { "yes" } else { "-" }.to_owned(),
            truncate(&s.summary.as_deref().unwrap_or("").replace('\n', " "), 80),
        ]);
    }
    write_columns(out, &table)
}

/// Rows as left-aligned columns two spaces apart, the first row the header.
/// Cells hold titles, branches, agents' questions and messages, pull
/// request text: each is printed with control characters made visible.
pub(crate) fn write_columns(out: &mut impl Write, table: &[Vec<String>]) -> std::io::Result<()> {
    let table: Vec<Vec<Cow<'_, str>>> = table.iter().map(|row| row.iter().map(|c| visible(c)).collect()).collect();
    let widths: Vec<usize> =
        (0..table[0].len()).map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &table {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() > max { text.chars().take(max - 1).chain(['…']).collect() } else { text.to_owned() }
}

/// `running`, `idle`, `needs-input: Bash: cargo test`, `exited (1)`,
/// `stopped`, `lost`, … (a running session whose host is gone shows as
/// `lost`).
pub fn state_text(s: &Session) -> String {
    match (facts::live_state(s), s.exit_code, s.activity, s.asking.as_deref()) {
        (SessionState::Exited, Some(code), _, _) => format!("exited ({code})"),
        (SessionState::Running, _, Some(Activity::NeedsInput), Some(asking)) => {
            format!("needs-input: {}", truncate(asking, 40))
        }
        _ => facts::reported_state(s).to_owned(),
    }
}
