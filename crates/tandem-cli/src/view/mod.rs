//! `tandem view` (also `tandem` with no arguments on a terminal): one
//! screen to run and watch every session of the repository (`--all`:
//! every repository).
//!
//! The state and keys live in [`tandem_cli::view::model`], the drawing in
//! [`tandem_cli::view::render`] (a library, so the bench can time a
//! redraw); this module runs them: raw mode and the alternate screen (restored on
//! exit, on a panic, and on SIGTERM/SIGHUP/SIGINT), a refresh whenever
//! the supervisor pushes a change (and every 2 s for ages), from its
//! cached facts (no git per frame), the
//! bell and a desktop notification when a session starts needing input
//! (`[view] bell`, `notify`), and each action carried out by the `tandem`
//! command that does it, so the view and the CLI cannot disagree.

use std::io::{self, IsTerminal, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tandem_core::host::screen::{self, PtyLog};
use tandem_core::protocol::{Request, Response};

use crate::context::Context;
use crate::error::CliError;
use tandem_cli::view::model::{self, Action, App, SessionRow};
use tandem_cli::view::render::{self, Scene};

/// Open the agent view: every session, grouped by what it needs
#[derive(clap::Args, Debug, Default)]
pub struct ViewArgs {
    /// Every repository's sessions, not only this one's
    #[arg(long)]
    all: bool,
}

/// How often the rows are refreshed with no change pushed (ages, and
/// states inferred from output, move with time alone).
const REFRESH: Duration = Duration::from_secs(2);

pub fn run(cx: &Context, args: &ViewArgs) -> Result<(), CliError> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(CliError::user("the agent view needs a terminal; use `tandem list` in scripts"));
    }
    let (title, config) = if args.all {
        ("all repositories".to_owned(), None)
    } else {
        let (repo, config) = cx.repo()?;
        let name =
            repo.root.file_name().map_or_else(|| repo.root.display().to_string(), |n| n.to_string_lossy().into_owned());
        (name, Some(config))
    };
    let config = config.unwrap_or_else(tandem_core::config::Config::defaults);
    let (bell, notify, quiet) = (config.view.bell, config.view.notify, config.supervisor.quiet_secs);
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let pushed = push_changes(cx)?;
    let mut screen = ScreenGuard::enter()?;
    let mut app = App::new();
    let mut preview = Preview::default();
    let mut history: Vec<(String, String)> = Vec::new();
    // The session `history` is of; `None` after a refresh reloads it.
    let mut history_of: Option<String> = None;
    let mut last_refresh: Option<Instant> = None;
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let changed = pushed.try_iter().count() > 0;
        if changed || last_refresh.is_none_or(|t| t.elapsed() >= REFRESH) {
            match load_rows(cx, args.all, quiet) {
                Ok(rows) => {
                    let newly = app.set_rows(rows);
                    if !newly.is_empty() && !first {
                        let rows: Vec<&SessionRow> = app
                            .rows()
                            .iter()
                            .filter(|r| r.group() == model::Group::NeedsInput && newly.contains(&r.name))
                            .collect();
                        announce(&model::notification(&rows), bell, notify);
                    }
                    first = false;
                }
                Err(e) => app.message = Some(format!("error: {e}")),
            }
            last_refresh = Some(Instant::now());
            history_of = None;
        }
        let selected = app.selected_row().map(|r| r.id.clone());
        if history_of != selected {
            history = selected
                .as_deref()
                .and_then(|id| cx.store().ok().and_then(|s| s.recent_events(id, 20).ok()))
                .map(|events| events.into_iter().map(|e| (e.kind.as_str().to_owned(), e.text)).collect())
                .unwrap_or_default();
            history_of.clone_from(&selected);
        }
        preview.update(cx, selected.as_deref());
        let now = tandem_core::unix_now();
        screen.terminal.draw(|frame| {
            let scene = Scene { title: &title, preview: preview.screen(), history: &history, now, color };
            render::draw(frame, &app, &scene);
        })?;
        if !event::poll(Duration::from_millis(100))? {
            continue;
        }
        let Event::Key(key) = event::read()? else { continue };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let Some(action) = app.key(key) else { continue };
        if action == Action::Quit {
            break;
        }
        if let Action::Attach(name) = &action {
            screen.suspend()?;
            let status = tandem(&["attach", name]).status();
            screen.resume()?;
            app.message = match status {
                Ok(s) if s.success() => Some(format!("detached from {name}")),
                Ok(_) | Err(_) => Some(format!("cannot attach to {name}")),
            };
        } else {
            app.message = Some(carry_out(&action));
        }
        last_refresh = None;
    }
    drop(screen);
    Ok(())
}

/// A thread that waits on the supervisor for changes
/// ([`Request::Changes`]) and says so on the channel; it ends when the
/// view does (the channel closes) or the supervisor goes away (the view
/// then refreshes on its timer).
fn push_changes(cx: &Context) -> Result<std::sync::mpsc::Receiver<()>, CliError> {
    let mut client = cx.supervisor()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("changes".into()).spawn(move || {
        let mut generation = 0;
        while let Ok(Response::Changed { generation: now }) = client.request(&Request::Changes { generation }) {
            if now != generation {
                generation = now;
                if tx.send(()).is_err() {
                    break;
                }
            }
        }
    })?;
    Ok(rx)
}

/// The alternate screen in raw mode, left when dropped (also on panic).
struct ScreenGuard {
    terminal: Terminal<CrosstermBackend<io::Stdout>>,
}

impl ScreenGuard {
    fn enter() -> io::Result<ScreenGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            leave();
            previous(info);
        }));
        crossterm::terminal::enable_raw_mode()?;
        crossterm::execute!(io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)?;
        Ok(ScreenGuard { terminal: Terminal::new(CrosstermBackend::new(io::stdout()))? })
    }

    /// Gives the terminal to a child (`tandem attach`).
    fn suspend(&mut self) -> io::Result<()> {
        leave();
        Ok(())
    }

    fn resume(&mut self) -> io::Result<()> {
        crossterm::terminal::enable_raw_mode()?;
        crossterm::execute!(io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)?;
        self.terminal.clear()
    }
}

impl Drop for ScreenGuard {
    fn drop(&mut self) {
        leave();
    }
}

/// Leaves the alternate screen and raw mode; safe to call twice.
fn leave() {
    let _ = crossterm::execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
    crate::terminal::restore();
}

/// Rings the bell and sends a desktop notification, `text` from
/// [`model::notification`] (OSC 9 for iTerm2, kitty, WezTerm, Windows
/// Terminal; OSC 777 for VTE terminals and foot).
fn announce(text: &str, bell: bool, notify: bool) {
    let mut out = io::stdout().lock();
    if bell {
        let _ = out.write_all(b"\x07");
    }
    if notify {
        let _ = write!(out, "\x1b]9;tandem: {text}\x07\x1b]777;notify;tandem;{text}\x07");
    }
    let _ = out.flush();
}

/// The `tandem` binary running this view, as a command with no input.
fn tandem(args: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "tandem".into());
    let mut cmd = Command::new(exe);
    cmd.args(args);
    cmd
}

/// Runs the command for `action`; returns what it said, in one line.
fn carry_out(action: &Action) -> String {
    let args: Vec<String> = match action {
        Action::Quit | Action::Attach(_) => return String::new(),
        Action::Send { name, text } => vec!["send".into(), name.clone(), text.clone()],
        Action::Approve(name) => vec!["approve".into(), name.clone()],
        Action::Deny(name) => vec!["deny".into(), name.clone()],
        Action::Stop(name) => vec!["stop".into(), name.clone()],
        Action::Respawn(name) => vec!["respawn".into(), name.clone()],
        Action::Fork(name) => vec!["fork".into(), name.clone()],
        Action::Pin { name, pinned } => {
            vec!["set".into(), name.clone(), if *pinned { "--pin" } else { "--unpin" }.into()]
        }
        Action::Archive(name) => vec!["archive".into(), name.clone()],
        Action::Remove { name, force } => {
            let mut args = vec!["rm".to_owned(), name.clone()];
            if *force {
                args.push("--force".into());
            }
            args
        }
        Action::Priority { name, priority } => {
            vec!["set".into(), name.clone(), "--priority".into(), priority.as_str().into()]
        }
        Action::Status { name, status } => vec!["set".into(), name.clone(), "--status".into(), status.as_str().into()],
        Action::New { name, agent, base, prompt } => {
            let mut args = vec!["new".to_owned(), "--bg".to_owned()];
            args.extend(name.clone());
            for (flag, value) in [("--agent", agent), ("--base", base), ("--prompt", prompt)] {
                if let Some(value) = value {
                    args.extend([flag.to_owned(), value.clone()]);
                }
            }
            args
        }
    };
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match tandem(&refs).stdin(Stdio::null()).output() {
        Ok(out) => {
            let text = if out.status.success() { &out.stdout } else { &out.stderr };
            let text = String::from_utf8_lossy(text);
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().to_owned();
            if out.status.success() { format!("{}: {line}", args[0]) } else { line }
        }
        Err(e) => format!("error: cannot run tandem: {e}"),
    }
}

/// The rows of this repository (`all`: of every repository), from the
/// supervisor's cached facts, with each agent's last message. `quiet`:
/// `supervisor.quiet_secs`, for agents whose state is inferred.
fn load_rows(cx: &Context, all: bool, quiet: u64) -> Result<Vec<SessionRow>, CliError> {
    let roots: Vec<std::path::PathBuf> = if all {
        cx.store()?.repos()?.into_iter().map(|(_, _, root)| root).filter(|r| r.is_dir()).collect()
    } else {
        vec![cx.cwd.clone()]
    };
    let store = cx.store()?;
    let mut client = cx.supervisor()?;
    let mut rows = Vec::new();
    for root in roots {
        for archived in [false, true] {
            let Response::Listed { sessions, facts, conflicts, .. } =
                client.request(&Request::List { cwd: root.clone(), archived })?
            else {
                return Err(CliError::Internal("the supervisor answered list with something else".into()));
            };
            let now = tandem_core::unix_now();
            rows.extend(tandem_core::rows::rows(&cx.paths, &sessions, facts, &conflicts, quiet, now, Some(&store)));
        }
    }
    Ok(rows)
}

/// The selected session's screen, rebuilt from its PTY log when the log
/// grows (the last 256 KiB, in the agent's own terminal size).
#[derive(Default)]
struct Preview {
    session: Option<String>,
    log_len: u64,
    parser: Option<vt100::Parser>,
}

impl Preview {
    /// How much of the log's end is replayed.
    const TAIL: u64 = 256 * 1024;

    fn update(&mut self, cx: &Context, session: Option<&str>) {
        let Some(id) = session else {
            *self = Preview::default();
            return;
        };
        let dir = cx.paths.session_dir(id);
        let len = std::fs::metadata(PtyLog::path(&dir)).map_or(0, |m| m.len());
        if self.session.as_deref() == Some(id) && len == self.log_len {
            return;
        }
        let (rows, cols) = screen::read_size(&dir);
        let mut parser = vt100::Parser::new(rows.max(2), cols.max(2), 0);
        if let Ok(bytes) = read_tail(&PtyLog::path(&dir), Self::TAIL) {
            parser.process(&bytes);
        }
        *self = Preview { session: Some(id.to_owned()), log_len: len, parser: Some(parser) };
    }

    fn screen(&self) -> Option<&vt100::Screen> {
        self.parser.as_ref().map(vt100::Parser::screen)
    }
}

fn read_tail(path: &std::path::Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
