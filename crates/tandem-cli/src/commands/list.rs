use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use tandem_core::config::Config;
use tandem_core::protocol::Listed;
use tandem_core::rows::{self, Group, SessionRow, columns};
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
    /// The sessions of every repository tandem knows, with a REPO column
    #[arg(long)]
    all: bool,
    /// Redraw the table whenever a session changes, until ctrl-c
    #[arg(long, conflicts_with_all = ["json", "names"])]
    watch: bool,
    /// Every column at full width, however wide the terminal
    #[arg(long, conflicts_with = "columns")]
    wide: bool,
    /// Only these columns, in this order (comma-separated JSON keys or
    /// headers: name,state,changed,base,title,branch,agent,status,path, …)
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
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
    let chosen = chosen_columns(&args.columns)?;
    // Remote hosts first: their answers travel while this machine's rows
    // are made.
    let remote = (!args.names && !args.watch).then(|| ask_remotes(cx, args.archived)).flatten();
    let tandem = cx.tandem()?;
    let here = if args.all || args.names || args.watch { None } else { listed_here(cx, &tandem, args) };
    let repos = match &here {
        Some(listed) => vec![(listed.root.clone(), PathBuf::new())],
        None => repos(cx, args.all)?,
    };
    if args.names {
        let store = cx.store()?;
        let mut out = std::io::stdout().lock();
        for (_, common_dir) in &repos {
            let sessions = match store.find_repo(common_dir)? {
                Some(id) => store.sessions(id)?,
                None => Vec::new(),
            };
            for s in sessions.iter().filter(|s| (s.state == SessionState::Archived) == args.archived) {
                writeln!(out, "{}", visible(&s.slug))?;
            }
        }
        return Ok(());
    }
    let view = View {
        args,
        statuses,
        priorities,
        sort,
        chosen,
        width: if args.wide { None } else { terminal_width() },
        colour: colour_on(),
    };
    if args.watch {
        return watch(cx, &tandem, &repos, &view);
    }
    let frame = frame(cx, &tandem, &repos, &view, remote, here)?;
    for note in &frame.notes {
        crate::context::note!("{note}");
    }
    let mut out = std::io::stdout().lock();
    out.write_all(frame.text.as_bytes())?;
    Ok(())
}

/// How the rows are shown: the filters, the order, the columns, the
/// width to fit and whether in colour.
struct View<'a> {
    args: &'a ListArgs,
    statuses: Vec<TaskStatus>,
    priorities: Vec<Priority>,
    sort: Sort,
    /// `--columns`, as column keys; empty: the table's own choice.
    chosen: Vec<&'static str>,
    /// Columns to fit in; `None`: no limit.
    width: Option<usize>,
    colour: bool,
}

/// One rendering of the list: what goes to stdout and the notes for
/// stderr.
struct Frame {
    text: String,
    notes: Vec<String>,
}

/// This repository's rows from a running supervisor, which finds the
/// repository from the current folder: no `git` runs here, ~5–10 ms of
/// a `tandem list` of 200 rows on a busy machine (issue 23). `None` when
/// no supervisor runs (so a command outside a repository starts none)
/// or it refused: the usual way then says why.
fn listed_here(cx: &Context, tandem: &tandem_core::client::Tandem, args: &ListArgs) -> Option<Listed> {
    tandem.listed_in(&cx.cwd, args.archived, args.json).ok().flatten()
}

/// The repositories to list: the current one (with its common dir), or
/// with `all` every one tandem knows whose folder is still there.
fn repos(cx: &Context, all: bool) -> Result<Vec<(PathBuf, PathBuf)>, CliError> {
    if !all {
        let (repo, _) = cx.repo()?;
        return Ok(vec![(repo.root, repo.common_dir)]);
    }
    if !cx.paths.database().exists() {
        return Ok(Vec::new());
    }
    let store = cx.store()?;
    Ok(store
        .repos()?
        .into_iter()
        .filter(|(_, _, root)| root.is_dir())
        .map(|(_, common_dir, root)| (root, common_dir))
        .collect())
}

/// Remote hosts' rows and notes, being asked on a thread.
type RemoteRows = std::thread::JoinHandle<(Vec<SessionRow>, Vec<String>)>;

/// Asks every remote host for its rows on a thread, each for at most
/// `remote.timeout_secs`; `None` when no host is added.
fn ask_remotes(cx: &Context, archived: bool) -> Option<RemoteRows> {
    tandem_core::remote::Registry::new(&cx.paths).any().then(|| {
        let (paths, timeout) = (cx.paths.clone(), crate::commands::remote::timeout(cx));
        std::thread::spawn(move || crate::commands::remote::remote_rows(&paths, timeout, archived))
    })
}

/// Each listed repository's rows (filtered and ordered) as text, with
/// the remote hosts' rows `remote` brings; `here`: the first one's
/// answer, already asked for.
fn frame(
    cx: &Context,
    tandem: &tandem_core::client::Tandem,
    repos: &[(PathBuf, PathBuf)],
    view: &View<'_>,
    remote: Option<RemoteRows>,
    mut here: Option<Listed>,
) -> Result<Frame, CliError> {
    let args = view.args;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut now = tandem_core::unix_now();
    let mut stale = false;
    for (root, _) in repos {
        let config = Config::load(&cx.paths.config_dir.join("config.toml"), Some(&root.join(".tandem.toml")))?;
        let quiet = config.supervisor.quiet_secs;
        let listing = match here.take() {
            Some(listed) => tandem.listing(listed, quiet),
            None => tandem.rows(root, args.archived, quiet, args.json)?,
        };
        notes.extend(listing.notes.iter().map(|n| visible(n).into_owned()));
        now = listing.now;
        stale |= listing.marks_stale;
        rows.extend(listing.rows.into_iter().map(|mut r| {
            if args.all || args.json {
                r.repo = Some(root.clone());
            }
            r
        }));
    }
    if let Some((remote_rows, remote_notes)) = remote.and_then(|t| t.join().ok()) {
        rows.extend(remote_rows);
        notes.extend(remote_notes);
    }
    let mut rows: Vec<SessionRow> = rows
        .into_iter()
        .filter(|r| {
            (view.statuses.is_empty() || view.statuses.contains(&r.meta.status))
                && (view.priorities.is_empty() || view.priorities.contains(&r.meta.priority))
                && (!args.pinned || r.meta.pinned)
        })
        .collect();
    order(&mut rows, view.sort);
    let mut text = String::new();
    if args.json {
        text = serde_json::to_string_pretty(&columns::json(&rows, now)).map_err(std::io::Error::from)?;
        text.push('\n');
        return Ok(Frame { text, notes });
    }
    if rows.is_empty() {
        let filtered = !view.statuses.is_empty() || !view.priorities.is_empty() || args.pinned;
        let line = match (filtered, args.archived, args.all) {
            (true, _, _) => "no sessions match",
            (false, true, false) => "no archived sessions in this repository",
            (false, true, true) => "no archived sessions",
            (false, false, false) => "no sessions in this repository; start one with `tandem new`",
            (false, false, true) => "no sessions in any repository; start one with `tandem new`",
        };
        text.push_str(line);
        text.push('\n');
        return Ok(Frame { text, notes });
    }
    if args.archived {
        let mut out = Vec::new();
        write_columns(&mut out, &columns::archived_table(&rows, now))?;
        text = String::from_utf8_lossy(&out).into_owned();
        return Ok(Frame { text, notes });
    }
    let rows = rows::under_creators(rows);
    text = render(&rows, now, view, stale);
    for r in &rows {
        if r.pr.as_ref().is_some_and(|p| p.state == tandem_core::ship::github::PrState::Merged) {
            notes.push(format!(
                "{}'s pull request #{} was merged; `tandem archive {}` puts it away",
                visible(&r.name),
                r.pr_number.unwrap_or_default(),
                visible(&r.name)
            ));
        }
    }
    Ok(Frame { text, notes })
}

/// `--watch`: the table, drawn again each time the supervisor says
/// something changed (and every few seconds, for the ages), until ctrl-c
/// or the supervisor goes away.
fn watch(
    cx: &Context,
    tandem: &tandem_core::client::Tandem,
    repos: &[(PathBuf, PathBuf)],
    view: &View<'_>,
) -> Result<(), CliError> {
    let tty = std::io::stdout().is_terminal();
    for change in tandem.subscribe()? {
        change?;
        let frame = frame(cx, tandem, repos, view, ask_remotes(cx, view.args.archived), None)?;
        let mut out = std::io::stdout().lock();
        if tty {
            // Home, clear the screen: the table replaces the last one.
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        out.write_all(frame.text.as_bytes())?;
        for note in &frame.notes {
            writeln!(out, "note: {note}")?;
        }
        writeln!(out, "\nwatching for changes; ctrl-c to stop")?;
        out.flush()?;
    }
    Err(CliError::user("the supervisor went away; run `tandem list --watch` again to start it"))
}

/// The keys of `--columns`, checked: a JSON key of a table column or its
/// header (any case).
fn chosen_columns(names: &[String]) -> Result<Vec<&'static str>, CliError> {
    let known: Vec<(&'static str, &'static columns::TableColumn)> =
        columns::COLUMNS.iter().filter_map(|c| c.table.as_ref().map(|t| (c.key, t))).collect();
    names
        .iter()
        .map(|name| {
            let wanted = name.trim().to_lowercase();
            known.iter().find(|(key, t)| *key == wanted || t.name == wanted).map(|(key, _)| *key).ok_or_else(|| {
                let keys: Vec<&str> = known.iter().map(|(_, t)| t.name).collect();
                CliError::user(format!("unknown column `{}`; use some of {}", visible(name), keys.join(", ")))
            })
        })
        .collect()
}

/// The terminal's width when stdout is one (else `$COLUMNS` when set);
/// `None` when nothing limits it: output to a pipe or a file keeps every
/// column at full width.
fn terminal_width() -> Option<usize> {
    let env = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| *c > 0);
    if std::io::stdout().is_terminal()
        && let Ok((cols, _)) = crossterm::terminal::size()
        && cols > 0
    {
        return Some(usize::from(cols));
    }
    env
}

/// Colour when stdout is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
fn colour_on() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The table of `rows`, fitted to `view.width`: the columns that matter
/// least are left out first, free text is cut with `…`, and no line is
/// longer than the width. `stale`: conflict marks are being recomputed
/// (said in the CONFLICTS header, not in a note each time).
fn render(rows: &[SessionRow], now: i64, view: &View<'_>, stale: bool) -> String {
    let mut shown = columns::shown(rows);
    if !view.chosen.is_empty() {
        let all = columns::shown_all(rows);
        shown = view
            .chosen
            .iter()
            .filter_map(|key| all.iter().position(|c| c.key == *key).map(|i| all[i].clone()))
            .collect();
    }
    let mut cols: Vec<Col> = shown
        .into_iter()
        .map(|c| {
            let mut header = c.header.clone();
            if stale && c.key == "conflicts_with" {
                header.push_str(" (updating)");
            }
            let cells: Vec<String> = rows
                .iter()
                .map(|r| {
                    let cell = (c.column.cell)(r, now);
                    let cell = match c.key {
                        "path" => home_relative(&cell),
                        // A sub-session, right under its creator.
                        "name" if rows::is_sub_session(r, rows) => format!("↳ {cell}"),
                        _ => cell,
                    };
                    visible(&cell).into_owned()
                })
                .collect();
            Col { key: c.key, keep: c.column.keep, cut: c.column.cut, header, cells, width: 0 }
        })
        .collect();
    for c in &mut cols {
        c.width = c.natural();
    }
    if let Some(max) = view.width {
        fit(&mut cols, max, view.chosen.is_empty());
    }
    let mut text = String::new();
    let paint = |code: Option<&str>, cell: &str, width: usize, last: bool| -> String {
        let cell = cut_to(cell, width);
        let pad = if last { 0 } else { width.saturating_sub(cell.chars().count()) };
        match code.filter(|_| view.colour) {
            Some(code) => format!("\x1b[{code}m{cell}\x1b[0m{}", " ".repeat(pad)),
            None => format!("{cell}{}", " ".repeat(pad)),
        }
    };
    let header: Vec<String> =
        cols.iter().enumerate().map(|(i, c)| paint(Some("1"), &c.header, c.width, i + 1 == cols.len())).collect();
    text.push_str(header.join("  ").trim_end());
    text.push('\n');
    for (n, row) in rows.iter().enumerate() {
        let line: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| paint(colour(c.key, row, &c.cells[n]), &c.cells[n], c.width, i + 1 == cols.len()))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// A column being fitted: its cells (escaped) and the width it gets.
struct Col {
    key: &'static str,
    keep: u8,
    cut: bool,
    header: String,
    cells: Vec<String>,
    width: usize,
}

impl Col {
    /// The width of its widest cell or header.
    fn natural(&self) -> usize {
        self.cells.iter().chain([&self.header]).map(|c| c.chars().count()).max().unwrap_or(0)
    }
}

/// Narrows `cols` to `max` characters a line: free-text columns are cut
/// to a readable width, then (when `drop`) the columns that matter least
/// are left out, then free text is cut further.
fn fit(cols: &mut Vec<Col>, max: usize, drop: bool) {
    let total = |cols: &[Col]| cols.iter().map(|c| c.width).sum::<usize>() + 2 * cols.len().saturating_sub(1);
    if total(cols) <= max {
        return;
    }
    for c in cols.iter_mut().filter(|c| c.cut) {
        c.width = c.width.min(if c.key == "state" { 36 } else { 24 });
    }
    while drop && total(cols) > max {
        let Some((i, _)) =
            cols.iter().enumerate().filter(|(_, c)| c.keep != columns::ALWAYS).min_by_key(|(_, c)| c.keep)
        else {
            break;
        };
        cols.remove(i);
    }
    // Then the free text, widest first, down to its header.
    while total(cols) > max {
        let Some(c) =
            cols.iter_mut().filter(|c| c.cut && c.width > c.header.chars().count().max(8)).max_by_key(|c| c.width)
        else {
            break;
        };
        c.width -= 1;
    }
}

/// `text` cut to `width` characters, the last one `…` when cut.
fn cut_to(text: &str, width: usize) -> Cow<'_, str> {
    if text.chars().count() <= width {
        Cow::Borrowed(text)
    } else if width == 0 {
        Cow::Borrowed("")
    } else {
        Cow::Owned(text.chars().take(width - 1).chain(['…']).collect())
    }
}

/// A path under the home folder as `~/…`.
fn home_relative(path: &str) -> String {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() && home != "/" => match path.strip_prefix(home.trim_end_matches('/')) {
            Some(rest) if rest.starts_with('/') || rest.is_empty() => format!("~{rest}"),
            _ => path.to_owned(),
        },
        _ => path.to_owned(),
    }
}

/// The SGR colour of a cell, by what it says: the state by its group,
/// uncommitted files, commits ahead and behind, conflicts.
fn colour(key: &str, row: &SessionRow, cell: &str) -> Option<&'static str> {
    match key {
        "name" => Some("1"),
        "state" => Some(match row.group() {
            Group::NeedsInput => "1;33",
            Group::Running => "32",
            Group::Idle => "36",
            Group::Error => "31",
            Group::Done if row.state == "lost" => "31",
            Group::Done | Group::Archived => "2",
        }),
        "changed" => match row.changes() {
            Some((0, 0)) => Some("2"),
            Some(_) => Some("33"),
            None => Some("31"),
        },
        "base" => match (row.ahead(), row.behind()) {
            (Some(0), Some(0)) => Some("2"),
            (Some(_), Some(0)) => Some("32"),
            (Some(_), Some(_)) => Some("33"),
            _ => None,
        },
        "behind_remote" => row.facts.refs.behind_remote.filter(|b| *b > 0).map(|_| "33"),
        "conflicts_with" if cell != "-" => Some("31"),
        _ => None,
    }
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
