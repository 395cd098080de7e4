use std::io::Write;

use serde::Serialize;
use tandem_core::session::facts::{self, GitFacts};
use tandem_core::store::{Priority, Session, SessionState, TaskStatus};

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
}

/// One row of `tandem list --json`.
#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    id: &'a str,
    branch: &'a str,
    path: &'a std::path::Path,
    agent: &'a str,
    /// `running`, `exited`, `stopped`, `lost` or `creating`.
    state: &'static str,
    exit_code: Option<i32>,
    dirty: Option<bool>,
    ahead: Option<u32>,
    behind: Option<u32>,
    base: &'a str,
    base_commit: &'a str,
    title: Option<&'a str>,
    priority: Priority,
    status: TaskStatus,
    pinned: bool,
    /// Unix seconds.
    created_at: i64,
    age_seconds: i64,
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
    let (repo, _) = cx.repo()?;
    let store = cx.store()?;
    let mut sessions = match store.find_repo(&repo.common_dir)? {
        Some(id) => store.sessions(id)?,
        None => Vec::new(),
    };
    sessions.retain(|s| {
        (statuses.is_empty() || statuses.contains(&s.meta.status))
            && (priorities.is_empty() || priorities.contains(&s.meta.priority))
            && (!args.pinned || s.meta.pinned)
    });
    order(&mut sessions, sort);
    for s in &mut sessions {
        s.state = facts::live_state(s);
    }
    let facts = facts::gather(&repo.root, &sessions);
    let now = tandem_core::unix_now();
    let mut out = std::io::stdout().lock();
    if args.json {
        let rows: Vec<Row<'_>> = sessions
            .iter()
            .zip(&facts)
            .map(|(s, f)| Row {
                name: &s.slug,
                id: &s.id,
                branch: &s.branch,
                path: &s.path,
                agent: &s.agent,
                state: s.state.as_str(),
                exit_code: s.exit_code,
                dirty: f.dirty,
                ahead: f.ahead,
                behind: f.behind,
                base: &s.base_ref,
                base_commit: &s.base_commit,
                title: s.meta.title.as_deref(),
                priority: s.meta.priority,
                status: s.meta.status,
                pinned: s.meta.pinned,
                created_at: s.created_at,
                age_seconds: now - s.created_at,
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if sessions.is_empty() {
        let filtered = !statuses.is_empty() || !priorities.is_empty() || args.pinned;
        if filtered {
            writeln!(out, "no sessions match")?;
        } else {
            writeln!(out, "no sessions in this repository; start one with `tandem new`")?;
        }
        return Ok(());
    }
    write_table(&mut out, &sessions, &facts, now)?;
    Ok(())
}

/// Pinned first, then by `sort`, ties broken by creation order.
/// `sessions` come oldest first; the sort is stable.
fn order(sessions: &mut [Session], sort: Sort) {
    if matches!(sort, Sort::Age) {
        // Newest first, also among sessions made in the same second.
        sessions.reverse();
    }
    sessions.sort_by(|a, b| {
        b.meta.pinned.cmp(&a.meta.pinned).then_with(|| match sort {
            Sort::Created => a.created_at.cmp(&b.created_at),
            Sort::Age => b.created_at.cmp(&a.created_at),
            Sort::Name => a.slug.cmp(&b.slug),
            Sort::Priority => a.meta.priority.cmp(&b.meta.priority),
        })
    });
}

fn write_table(out: &mut impl Write, sessions: &[Session], facts: &[GitFacts], now: i64) -> std::io::Result<()> {
    // Title and priority columns only when some session has one.
    let titles = sessions.iter().any(|s| s.meta.title.is_some());
    let priorities = sessions.iter().any(|s| s.meta.priority != Priority::None);
    let mut header = vec!["NAME", "BRANCH"];
    if titles {
        header.push("TITLE");
    }
    header.extend(["AGENT", "STATE", "STATUS"]);
    if priorities {
        header.push("PRIORITY");
    }
    header.extend(["DIRTY", "AHEAD/BEHIND", "AGE", "PATH"]);
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for (s, f) in sessions.iter().zip(facts) {
        let name = if s.meta.pinned { format!("{} *", s.slug) } else { s.slug.clone() };
        let mut row = vec![name, s.branch.clone()];
        if titles {
            row.push(truncate(s.meta.title.as_deref().unwrap_or(""), 32));
        }
        row.extend([truncate(&s.agent, 24), state_text(s), s.meta.status.as_str().to_owned()]);
        if priorities {
            row.push(s.meta.priority.as_str().to_owned());
        }
        let dirty = match f.dirty {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let counts = match (f.ahead, f.behind) {
            (Some(a), Some(b)) => format!("+{a} -{b}"),
            _ => "?".to_owned(),
        };
        row.extend([dirty.to_owned(), counts, age(now - s.created_at), s.path.display().to_string()]);
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() > max { text.chars().take(max - 1).chain(['…']).collect() } else { text.to_owned() }
}

/// `running`, `exited (1)`, `stopped`, `lost`, … (a running session
/// whose host is gone shows as `lost`).
pub fn state_text(s: &Session) -> String {
    match (facts::live_state(s), s.exit_code) {
        (SessionState::Exited, Some(code)) => format!("exited ({code})"),
        (state, _) => state.as_str().to_owned(),
    }
}

/// A short age: `42s`, `5m`, `3h`, `2d`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
