use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use tandem_core::config::Config;
use tandem_core::protocol::Listed;
use tandem_core::rows::table::{self, Frame, ListView, Sort};
use tandem_core::rows::{self, SessionRow};
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

impl ListArgs {
    /// `tandem list` with no flag.
    pub(crate) fn plain() -> ListArgs {
        ListArgs {
            json: false,
            status: Vec::new(),
            priority: Vec::new(),
            pinned: false,
            sort: "created".to_owned(),
            archived: false,
            names: false,
            all: false,
            watch: false,
            wide: false,
            columns: Vec::new(),
        }
    }
}

pub fn run(cx: &Context, args: &ListArgs) -> Result<(), CliError> {
    // Check every filter before reading anything.
    let statuses: Vec<TaskStatus> =
        args.status.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(CliError::User)?;
    let priorities: Vec<Priority> =
        args.priority.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(CliError::User)?;
    let sort: Sort = args.sort.parse().map_err(CliError::User)?;
    let columns = args
        .columns
        .iter()
        .map(|c| table::column_key(c).map(str::to_owned))
        .collect::<Result<Vec<_>, String>>()
        .map_err(CliError::User)?;
    let view = ListView {
        json: args.json,
        archived: args.archived,
        all: args.all,
        statuses,
        priorities,
        pinned: args.pinned,
        sort,
        columns,
        width: if args.wide { None } else { terminal_width() },
        colour: colour_on(),
        home: std::env::var("HOME").ok(),
        env: tandem_core::config::config_env(),
    };
    // Remote hosts first: their answers travel while this machine's rows
    // are made.
    let remote = (!args.names && !args.watch).then(|| ask_remotes(cx, args.archived)).flatten();
    let tandem = cx.tandem()?;
    let simple = !(args.all || args.names || args.watch);
    // One repository and no remote host: a running supervisor renders
    // the text (issue 23); else the rows are made here.
    if simple
        && remote.is_none()
        && let Some(frame) = tandem.list_text_in(&cx.cwd, &view).ok().flatten()
    {
        return print(&frame);
    }
    let here = if simple { listed_here(cx, &tandem, args) } else { None };
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
    if args.watch {
        return watch(cx, &tandem, &repos, &view);
    }
    print(&frame(cx, &tandem, &repos, &view, remote, here)?)
}

/// Prints `frame`: its notes to stderr, its text to stdout.
fn print(frame: &Frame) -> Result<(), CliError> {
    for note in &frame.notes {
        crate::context::note!("{note}");
    }
    let mut out = std::io::stdout().lock();
    out.write_all(frame.text.as_bytes())?;
    Ok(())
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
    view: &ListView,
    remote: Option<RemoteRows>,
    mut here: Option<Listed>,
) -> Result<Frame, CliError> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut now = tandem_core::unix_now();
    let mut stale = false;
    for (root, _) in repos {
        let config = Config::load(&cx.paths.config_dir.join("config.toml"), Some(&root.join(".tandem.toml")))?;
        let quiet = config.supervisor.quiet_secs;
        let listing = match here.take() {
            Some(listed) => tandem.listing(listed, quiet),
            None => tandem.rows(root, view.archived, quiet, view.json)?,
        };
        notes.extend(listing.notes);
        now = listing.now;
        stale |= listing.marks_stale;
        rows.extend(listing.rows.into_iter().map(|mut r| {
            if view.all || view.json {
                r.repo = Some(root.clone());
            }
            r
        }));
    }
    if let Some((remote_rows, remote_notes)) = remote.and_then(|t| t.join().ok()) {
        rows.extend(remote_rows);
        notes.extend(remote_notes);
    }
    Ok(table::frame(rows, now, view, stale, notes))
}

/// `--watch`: the table, drawn again each time the supervisor says
/// something changed (and every few seconds, for the ages), until ctrl-c
/// or the supervisor goes away.
fn watch(
    cx: &Context,
    tandem: &tandem_core::client::Tandem,
    repos: &[(PathBuf, PathBuf)],
    view: &ListView,
) -> Result<(), CliError> {
    let tty = std::io::stdout().is_terminal();
    for change in tandem.subscribe()? {
        change?;
        let frame = frame(cx, tandem, repos, view, ask_remotes(cx, view.archived), None)?;
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

pub(crate) use tandem_core::rows::table::write_columns;

/// `running`, `idle`, `needs-input: Bash: cargo test`, `exited (1)`,
/// `stopped`, `lost`, … (a running session whose host is gone shows as
/// `lost`): see [`tandem_core::rows::session_state_text`].
pub fn state_text(s: &Session) -> String {
    rows::session_state_text(s)
}
