use std::borrow::Cow;
use std::io::Write;

use tandem_core::client::Listing;
use tandem_core::rows::{self, SessionRow, columns};
use tandem_core::store::{Priority, Session, SessionState, TaskStatus};
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
    let Listing { rows, notes, now, marks_stale } =
        cx.tandem()?.rows(&cx.cwd, args.archived, config.supervisor.quiet_secs, false)?;
    for note in &notes {
        crate::context::note!("{}", visible(note));
    }
    if marks_stale && !args.archived && !args.json {
        crate::context::note!("conflict marks are being brought up to date; `tandem conflicts` has them now");
    }
    let mut rows: Vec<SessionRow> = rows
        .into_iter()
        .filter(|r| {
            (statuses.is_empty() || statuses.contains(&r.meta.status))
                && (priorities.is_empty() || priorities.contains(&r.meta.priority))
                && (!args.pinned || r.meta.pinned)
        })
        .collect();
    order(&mut rows, sort);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &columns::json(&rows, now)).map_err(std::io::Error::from)?;
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
        write_columns(&mut out, &columns::archived_table(&rows, now))?;
    } else {
        write_columns(&mut out, &columns::table(&rows, now))?;
        for r in &rows {
            if r.pr.as_ref().is_some_and(|p| p.state == tandem_core::ship::github::PrState::Merged) {
                crate::context::note!(
                    "{}'s pull request #{} was merged; `tandem archive {}` puts it away",
                    r.name,
                    r.pr_number.unwrap_or_default(),
                    r.name
                );
            }
        }
    }
    Ok(())
}

/// The state to list and whether it is inferred: see
/// [`tandem_core::rows::listed_state`].
pub fn listed_state(cx: &Context, s: &Session, now: i64, quiet: u64) -> (&'static str, bool) {
    rows::listed_state(&cx.paths, s, now, quiet)
}

/// Pinned first, then by `sort`, ties broken by creation order.
/// `rows` come oldest first; the sort is stable.
fn order(rows: &mut [SessionRow], sort: Sort) {
    if matches!(sort, Sort::Age) {
        // Newest first, also among sessions made in the same second.
        rows.reverse();
    }
    rows.sort_by(|a, b| {
        b.meta.pinned.cmp(&a.meta.pinned).then_with(|| match sort {
            Sort::Created => a.created_at.cmp(&b.created_at),
            Sort::Age => b.created_at.cmp(&a.created_at),
            Sort::Name => a.name.cmp(&b.name),
            Sort::Priority => a.meta.priority.cmp(&b.meta.priority),
        })
    });
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

/// `running`, `idle`, `needs-input: Bash: cargo test`, `exited (1)`,
/// `stopped`, `lost`, … (a running session whose host is gone shows as
/// `lost`): see [`tandem_core::rows::session_state_text`].
pub fn state_text(s: &Session) -> String {
    rows::session_state_text(s)
}
