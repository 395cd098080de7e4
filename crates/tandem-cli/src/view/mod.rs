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
//! (`[view] bell`, `notify`), and each action carried out through core's
//! typed client ([`tandem_core::client::Tandem`]), the one the CLI's
//! commands use, so the view and the CLI cannot disagree (and no
//! `tandem` process is started for an action; attaching runs in this
//! process too).

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tandem_core::host::screen::{self, PtyLog};

use crate::context::Context;
use crate::error::CliError;
use tandem_cli::view::model::{self, Action, App, Key, KeyCode, SessionRow};
use tandem_core::client::{RemoveOptions, Stopped, Tandem};
use tandem_core::protocol::CreateRequest;
use tandem_core::store::MetaUpdate;

use crate::commands::attach;
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
    let tandem = cx.tandem()?;
    let pushed = push_changes(&tandem)?;
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
            match load_rows(cx, &tandem, args.all, quiet) {
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
        let Some(action) = app.key(model_key(key)) else { continue };
        if action == Action::Quit {
            break;
        }
        if let Action::Attach(name) = &action {
            screen.suspend()?;
            let attached = cx.session(name).and_then(|(_, config, session)| attach::attach(cx, &session, &config));
            screen.resume()?;
            app.message = match attached {
                Ok(()) => Some(format!("detached from {name}")),
                Err(e) => Some(format!("cannot attach to {name}: {e}")),
            };
        } else {
            app.message = Some(carry_out(cx, &tandem, &action));
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
fn push_changes(tandem: &Tandem) -> Result<std::sync::mpsc::Receiver<()>, CliError> {
    let changes = tandem.subscribe()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("changes".into()).spawn(move || {
        let mut last = 0;
        for generation in changes.map_while(Result::ok) {
            if generation != last {
                last = generation;
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

/// crossterm's key as the view's model takes it.
fn model_key(key: event::KeyEvent) -> Key {
    use crossterm::event::KeyCode as C;
    let code = match key.code {
        C::Char(c) => KeyCode::Char(c),
        C::Enter => KeyCode::Enter,
        C::Esc => KeyCode::Esc,
        C::Backspace => KeyCode::Backspace,
        C::Tab => KeyCode::Tab,
        C::BackTab => KeyCode::BackTab,
        C::Up => KeyCode::Up,
        C::Down => KeyCode::Down,
        C::Home => KeyCode::Home,
        C::End => KeyCode::End,
        _ => KeyCode::Other,
    };
    Key { code, ctrl: key.modifiers.contains(event::KeyModifiers::CONTROL) }
}

/// Carries out `action` through the typed client, as the command that
/// does it would; returns what happened, in one line.
fn carry_out(cx: &Context, tandem: &Tandem, action: &Action) -> String {
    match act(cx, tandem, action) {
        Ok(done) => done,
        Err(e) => format!("error: {e}"),
    }
}

fn act(cx: &Context, tandem: &Tandem, action: &Action) -> Result<String, CliError> {
    let session = |name: &str| tandem.session(&cx.cwd, name).map(|(_, _, s)| s);
    let env = crate::context::agent_env;
    let size = crossterm::terminal::size().map(|(cols, rows)| (rows, cols)).unwrap_or((24, 80));
    Ok(match action {
        Action::Quit | Action::Attach(_) => String::new(),
        Action::Send { name, text } => {
            tandem.send(&session(name)?, text, env())?;
            format!("sent to {name}")
        }
        Action::Approve(name) => {
            tandem.answer(&session(name)?, true, None)?;
            format!("approved {name}")
        }
        Action::Deny(name) => {
            tandem.answer(&session(name)?, false, None)?;
            format!("denied {name}")
        }
        Action::Stop(name) => match tandem.stop(&session(name)?)? {
            Stopped::Stopped(s) => format!("stopped session {}; its worktree stays", s.slug),
            Stopped::NotRunning(state) => format!("session {name} is not running ({state})"),
        },
        Action::Respawn(name) => {
            let (s, resumed) = tandem.respawn(&session(name)?, env(), size)?;
            format!("respawned session {}{}", s.slug, if resumed { ", resuming its conversation" } else { "" })
        }
        Action::Fork(name) => {
            let created = tandem.fork(&session(name)?, None, env(), size)?;
            format!("forked {name} as {}", created.session.slug)
        }
        Action::Pin { name, pinned } => {
            let update = MetaUpdate { pinned: Some(*pinned), ..MetaUpdate::default() };
            tandem.set_meta(&session(name)?, &update)?;
            format!("{} {name}", if *pinned { "pinned" } else { "unpinned" })
        }
        Action::Priority { name, priority } => {
            let update = MetaUpdate { priority: Some(*priority), ..MetaUpdate::default() };
            tandem.set_meta(&session(name)?, &update)?;
            format!("{name}: priority {}", priority.as_str())
        }
        Action::Status { name, status } => {
            let update = MetaUpdate { status: Some(*status), ..MetaUpdate::default() };
            tandem.set_meta(&session(name)?, &update)?;
            format!("{name}: status {}", status.as_str())
        }
        Action::Archive(name) => {
            let archived = tandem.archive(&session(name)?.id, env())?;
            format!("archived session {} (branch {} kept)", archived.session.slug, archived.session.branch)
        }
        Action::Remove { name, force } => {
            let options = RemoveOptions { force: *force, ..RemoveOptions::default() };
            let (report, _) = tandem.remove(&cx.cwd, name, options, env())?;
            match report.archive_ref {
                Some(snapshot) => format!("removed session {}; snapshot kept at {snapshot}", report.slug),
                None => format!("removed session {}", report.slug),
            }
        }
        Action::New { name, agent, base, prompt } => {
            // Hooks the repository asks for and the user has not approved
            // are refused by the supervisor (`tandem new` asks first).
            let request = CreateRequest {
                cwd: cx.cwd.clone(),
                name: name.clone(),
                title: None,
                agent: agent.clone(),
                prompt: prompt.clone(),
                base: base.clone(),
                branch: None,
                from_pr: None,
                env: env(),
                rows: size.0,
                cols: size.1,
                fork_of: None,
                overlay: None,
                review_of: None,
                task: None,
                vars: Vec::new(),
                env_files: Vec::new(),
                env_file_vars: Vec::new(),
                sandbox: None,
            };
            let created = tandem.create(request)?;
            format!("new: {}\t{}", created.session.slug, created.session.path.display())
        }
    })
}

/// The rows of this repository (`all`: of every repository), from the
/// supervisor's cached facts, with each agent's last message. `quiet`:
/// `supervisor.quiet_secs`, for agents whose state is inferred.
fn load_rows(cx: &Context, tandem: &Tandem, all: bool, quiet: u64) -> Result<Vec<SessionRow>, CliError> {
    let roots: Vec<std::path::PathBuf> = if all {
        cx.store()?.repos()?.into_iter().map(|(_, _, root)| root).filter(|r| r.is_dir()).collect()
    } else {
        vec![cx.cwd.clone()]
    };
    let mut rows = Vec::new();
    for root in roots {
        for archived in [false, true] {
            rows.extend(tandem.rows(&root, archived, quiet, true)?.rows);
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
