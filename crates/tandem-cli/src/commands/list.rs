use std::io::Write;

use serde::Serialize;
use tandem_core::session::facts::{self, GitFacts};
use tandem_core::store::{Session, SessionState};

use crate::context::Context;
use crate::error::CliError;

/// List the sessions of this repository
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Print a JSON array of objects instead of a table
    #[arg(long)]
    json: bool,
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
    /// Unix seconds.
    created_at: i64,
    age_seconds: i64,
}

pub fn run(cx: &Context, args: &ListArgs) -> Result<(), CliError> {
    let (repo, _) = cx.repo()?;
    let store = cx.store()?;
    let mut sessions = match store.find_repo(&repo.common_dir)? {
        Some(id) => store.sessions(id)?,
        None => Vec::new(),
    };
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
                created_at: s.created_at,
                age_seconds: now - s.created_at,
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if sessions.is_empty() {
        writeln!(out, "no sessions in this repository; start one with `tandem new`")?;
        return Ok(());
    }
    let header = ["NAME", "BRANCH", "AGENT", "STATE", "DIRTY", "AHEAD/BEHIND", "AGE", "PATH"].map(String::from);
    let rows: Vec<[String; 8]> = sessions.iter().zip(&facts).map(|(s, f)| table_row(s, f, now)).collect();
    let widths: Vec<usize> = (0..8)
        .map(|i| std::iter::once(&header).chain(&rows).map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

fn table_row(s: &Session, f: &GitFacts, now: i64) -> [String; 8] {
    let agent: String =
        if s.agent.chars().count() > 24 { s.agent.chars().take(23).chain(['…']).collect() } else { s.agent.clone() };
    let dirty = match f.dirty {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let counts = match (f.ahead, f.behind) {
        (Some(a), Some(b)) => format!("+{a} -{b}"),
        _ => "?".to_owned(),
    };
    [
        s.slug.clone(),
        s.branch.clone(),
        agent,
        state_text(s),
        dirty.to_owned(),
        counts,
        age(now - s.created_at),
        s.path.display().to_string(),
    ]
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
