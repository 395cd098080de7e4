//! `tandem view` (also `tandem` with no arguments on a terminal): one
//! screen to run and watch every session of the repository (`--all`:
//! every repository). The rows are read on a thread of their own
//! ([`Loader`]), so no key waits on them.
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

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::context::Context;
use crate::error::CliError;
use tandem_cli::view::model::{self, Action, App, Key, KeyCode, SessionRow};
use tandem_core::checkpoints::Rewind;
use tandem_core::client::{RemoveOptions, Stopped, Tandem};
use tandem_core::protocol::CreateRequest;
use tandem_core::store::MetaUpdate;

use crate::commands::attach;
use tandem_cli::view::render::{self, Scene};
use tandem_cli::view::selected::Selected;

/// Open the agent view: every session, grouped by what it needs
#[derive(clap::Args, Debug, Default)]
pub struct ViewArgs {
    /// Every repository's sessions, not only this one's
    #[arg(long)]
    all: bool,
}

impl ViewArgs {
    /// What bare `tandem` opens in `cx`'s folder: this repository's
    /// view, or every repository's (`--all`) outside any repository, so
    /// a first run anywhere shows something instead of failing.
    pub fn bare(cx: &Context) -> ViewArgs {
        let outside = matches!(
            tandem_core::repo::Repository::discover(&cx.cwd),
            Err(tandem_core::repo::RepoError::NotARepository { .. })
        );
        ViewArgs { all: outside }
    }
}

/// How often the rows are refreshed with no change pushed (ages, and
/// states inferred from output, move with time alone).
const REFRESH: Duration = Duration::from_secs(2);

pub fn run(cx: &Context, args: &ViewArgs) -> Result<(), CliError> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(CliError::user("the agent view needs a terminal; use `tandem list` in scripts"));
    }
    let (title, config, root) = if args.all {
        ("all repositories".to_owned(), None, None)
    } else {
        let (repo, config) = cx.repo()?;
        let name =
            repo.root.file_name().map_or_else(|| repo.root.display().to_string(), |n| n.to_string_lossy().into_owned());
        (name, Some(config), Some(repo.root))
    };
    let config = config.unwrap_or_else(tandem_core::config::Config::defaults);
    let (bell, notify, quiet) = (config.view.bell, config.view.notify, config.supervisor.quiet_secs);
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let tandem = cx.tandem()?;
    // The rows are read on a thread of their own (issue 23): on every
    // change the supervisor pushes, every REFRESH, and after an action. A
    // key or a redraw never waits on the supervisor; each load wakes the
    // loop below through `wake`, as a remote host's answer does.
    let wake = Wake::new()?;
    let here = Context { paths: cx.paths.clone(), cwd: cx.cwd.clone() };
    let loader = Loader::start(here, tandem.clone(), root.clone(), quiet, wake.clone())?;
    push_changes(&tandem, &loader)?;
    let (remote_tx, remote_answers) = std::sync::mpsc::channel::<()>();
    let remote_wake = wake.clone();
    let remotes = tandem_core::remote::poll::Poller::start(
        cx.paths.clone(),
        crate::commands::remote::timeout(cx),
        tandem_core::remote::poll::EVERY,
        move |_| {
            let _ = remote_tx.send(());
            remote_wake.poke();
        },
    );
    // The first rows before the first frame: no empty list flashes.
    let mut first_load = Some(
        loader
            .loads
            .recv()
            .map_err(|_| CliError::Internal("the view's rows thread ended before its first load".into()))?,
    );
    // Loads that started before the last action are stale.
    let mut fresh = 0;
    let mut screen = ScreenGuard::enter()?;
    let mut app = App::new();
    let mut selected = Selected::default();
    // The rows were just read again (the history is read again too).
    let mut reloaded;
    let mut first = true;
    // Each session's repository (its main worktree), by session id: where
    // an action on it is carried out.
    let mut roots: HashMap<String, PathBuf> = HashMap::new();
    // This machine's rows as last loaded.
    let mut local: Vec<(PathBuf, Vec<SessionRow>)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        // The newest load only: older ones are stale.
        let load = match (first_load.take(), loader.newest(fresh)?) {
            (_, Some(newer)) => Some(newer),
            (first, None) => first,
        };
        let answered = remote_answers.try_iter().count() > 0;
        app.expire_message(model::MESSAGE_FOR);
        reloaded = false;
        if let Some(load) = &load {
            if load.changed {
                remotes.poke();
            }
            match &load.rows {
                Ok(rows) => local.clone_from(rows),
                Err(e) => app.say(format!("error: cannot list the sessions: {e}")),
            }
        }
        if load.as_ref().is_some_and(|l| l.rows.is_ok()) || answered {
            let mut loaded = local.clone();
            let remote = remotes.latest().rows;
            if !remote.is_empty() {
                loaded.push((cx.cwd.clone(), remote));
            }
            let mut rows = Vec::new();
            roots.clear();
            app.repos.clear();
            for (root, listed) in loaded {
                let repo = tandem_core::session::lookup::repo_name(&root);
                for row in &listed {
                    if args.all && row.host.is_none() {
                        app.repos.insert(row.id.clone(), repo.clone());
                    }
                    roots.insert(row.id.clone(), root.clone());
                }
                rows.extend(listed);
            }
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
            if let Some(name) = app.turns_of().map(str::to_owned) {
                let root = app.selected_row().and_then(|r| roots.get(&r.id)).cloned();
                let in_repo = Context { paths: cx.paths.clone(), cwd: root.unwrap_or_else(|| cx.cwd.clone()) };
                if let Ok(list) = turns_of(&in_repo, &tandem, &name) {
                    app.set_turns(list);
                }
            }
            reloaded = true;
        }
        // A remote host's session has no screen or history here (and its
        // id, the host's text, never names a local path).
        let id = app.selected_row().filter(|r| r.host.is_none()).map(|r| r.id.clone());
        selected.update(&cx.paths, id.as_deref(), reloaded);
        selected.prefetch(&cx.paths, &app.ahead());
        let now = tandem_core::unix_now();
        screen.terminal.draw(|frame| {
            let scene = Scene { title: &title, preview: selected.screen(), history: selected.history(), now, color };
            render::draw(frame, &app, &scene);
        })?;
        // Waited for here, not in crossterm: on a terminal that hung up
        // (its emulator or tmux pane is gone) crossterm's poll spins on
        // reads of 0 bytes and never returns, so the view would never end.
        if terminal_wait(Duration::from_millis(100), &wake) {
            break;
        }
        if !event::poll(Duration::ZERO)? {
            continue;
        }
        let Event::Key(key) = event::read()? else { continue };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        // The repository of the session a key acts on (the selected one).
        let here = app.selected_row().and_then(|r| roots.get(&r.id)).cloned().unwrap_or_else(|| cx.cwd.clone());
        let Some(action) = app.key(model_key(key)) else { continue };
        if action == Action::Quit {
            break;
        }
        let in_repo = Context { paths: cx.paths.clone(), cwd: here };
        match &action {
            Action::Attach(name) => {
                screen.suspend()?;
                let attached = match tandem_core::remote::split_address(name) {
                    // A remote host's session: `tandem attach HOST:NAME`.
                    Some((host, remote)) if host != "local" => crate::commands::route::attach(&in_repo, host, remote),
                    _ => in_repo
                        .session(name)
                        .and_then(|(_, config, session)| attach::attach(&in_repo, &session, &config)),
                };
                screen.resume()?;
                app.say(match attached {
                    Ok(()) => format!("detached from {name}"),
                    Err(e) => format!("cannot attach to {name}: {e}"),
                });
            }
            Action::Diff(name) | Action::Merge(name) => {
                let (command, done) =
                    if matches!(action, Action::Diff(_)) { ("diff", "diff of") } else { ("merge", "merge of") };
                screen.suspend()?;
                let result = crate::commands::run_in_view(&in_repo, &[command, name.as_str()]);
                if let Err(e) = &result {
                    let _ = e.report(&mut io::stderr().lock());
                }
                wait_for_enter();
                screen.resume()?;
                app.say(match result {
                    Ok(()) => format!("{done} {name}: done"),
                    Err(e) => format!("{done} {name} failed: {e}"),
                });
            }
            Action::Turns(name) => match turns_of(&in_repo, &tandem, name) {
                Ok(list) => app.open_turns(name.clone(), list),
                Err(e) => app.say(format!("could not {}: {e}", attempt(&action))),
            },
            Action::TurnDiff { name, n } => {
                screen.suspend()?;
                let n = n.to_string();
                let result = crate::commands::run_in_view(&in_repo, &["diff", name.as_str(), "--checkpoint", &n]);
                if let Err(e) = &result {
                    let _ = e.report(&mut io::stderr().lock());
                }
                wait_for_enter();
                screen.resume()?;
                app.say(match result {
                    Ok(()) => format!("diff of checkpoint {n} of {name}: done"),
                    Err(e) => format!("could not {}: {e}", attempt(&action)),
                });
            }
            Action::Rewind { name, .. } | Action::UndoRewind(name) => {
                app.say(carry_out(&in_repo, &tandem, &action));
                // The list again, with the checkpoint the rewind made first.
                if let Ok(list) = turns_of(&in_repo, &tandem, name) {
                    app.set_turns(list);
                }
            }
            Action::New { .. } => app.say(carry_out(cx, &tandem, &action)),
            _ => app.say(carry_out(&in_repo, &tandem, &action)),
        }
        fresh = loader.ask();
    }
    drop(screen);
    Ok(())
}

/// A thread that waits on the supervisor for changes
/// ([`Request::Changes`]) and says so on the channel; it ends when the
/// view does (the channel closes) or the supervisor goes away (the view
/// then refreshes on its timer).
fn push_changes(tandem: &Tandem, loader: &Loader) -> Result<(), CliError> {
    let changes = tandem.subscribe()?;
    let (asks, pushed) = (loader.asks.clone(), Arc::clone(&loader.pushed));
    std::thread::Builder::new().name("changes".into()).spawn(move || {
        let mut last = 0;
        for generation in changes.map_while(Result::ok) {
            if generation != last {
                last = generation;
                pushed.store(true, Ordering::SeqCst);
                if matches!(asks.try_send(()), Err(std::sync::mpsc::TrySendError::Disconnected(()))) {
                    break;
                }
            }
        }
    })?;
    Ok(())
}

/// One load of the rows ([`load_rows`]), whether a pushed change caused
/// it (the remote hosts are then asked again too), and the count of
/// asks ([`Loader::ask`]) made before it started.
struct Loaded {
    rows: Result<Vec<(PathBuf, Vec<SessionRow>)>, String>,
    changed: bool,
    asked: u64,
}

/// The thread that reads the rows: when asked (a pushed change, an
/// action; all asks made while it loads make one load) and every
/// [`REFRESH`] without one (ages and inferred states move with time
/// alone), at most once per [`Loader::GAP`]. Each load goes to `loads`
/// and pokes the loop's [`Wake`]. It ends when the view does (`loads`
/// closes).
struct Loader {
    /// Holds one ask; more while it is full are the same ask.
    asks: std::sync::mpsc::SyncSender<()>,
    /// Whether a change was pushed since the last load began.
    pushed: Arc<AtomicBool>,
    /// Holds one load: the thread waits until the loop has taken it, so
    /// a loop that is away (attached, or waiting for Enter after a diff)
    /// piles nothing up and asks the supervisor nothing more.
    loads: std::sync::mpsc::Receiver<Loaded>,
    /// Asks made so far ([`Loader::ask`]).
    asked: Arc<std::sync::atomic::AtomicU64>,
    /// A pushed change carried by a load that was dropped as stale.
    changed: std::cell::Cell<bool>,
}

impl Loader {
    /// The least time from one load's start to the next: a burst of
    /// changes (20 agents printing) costs ten loads a second at most.
    const GAP: Duration = Duration::from_millis(100);

    fn start(cx: Context, tandem: Tandem, root: Option<PathBuf>, quiet: u64, wake: Wake) -> io::Result<Loader> {
        let (asks, queue) = std::sync::mpsc::sync_channel::<()>(1);
        let (done, loads) = std::sync::mpsc::sync_channel(1);
        let asked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let pushed = Arc::new(AtomicBool::new(false));
        let (count, changes) = (Arc::clone(&asked), Arc::clone(&pushed));
        asks.try_send(()).map_err(io::Error::other)?;
        std::thread::Builder::new().name("rows".into()).spawn(move || {
            // An ask, or REFRESH without one; the view gone ends it.
            while !matches!(queue.recv_timeout(REFRESH), Err(std::sync::mpsc::RecvTimeoutError::Disconnected)) {
                let started = std::time::Instant::now();
                let asked = count.load(Ordering::SeqCst);
                let changed = changes.swap(false, Ordering::SeqCst);
                let rows = load_rows(&cx, &tandem, root.as_deref(), quiet).map_err(|e| e.to_string());
                if done.send(Loaded { rows, changed, asked }).is_err() {
                    break;
                }
                wake.poke();
                std::thread::sleep(Self::GAP.saturating_sub(started.elapsed()));
            }
        })?;
        Ok(Loader { asks, pushed, loads, asked, changed: std::cell::Cell::new(false) })
    }

    /// Reads the rows again soon (after an action); answers the count of
    /// asks, which the first load that follows carries.
    fn ask(&self) -> u64 {
        let asked = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.asks.try_send(());
        asked
    }

    /// The newest load that started after ask number `fresh` (older
    /// ones, and any before it, are dropped); `Err` when the thread has
    /// ended (it panicked: a view that no longer loads must not go on
    /// showing old rows as current).
    fn newest(&self, fresh: u64) -> Result<Option<Loaded>, CliError> {
        let mut newest: Option<Loaded> = None;
        loop {
            match self.loads.try_recv() {
                Ok(load) if load.asked >= fresh => {
                    let changed = load.changed || self.changed.take() || newest.as_ref().is_some_and(|n| n.changed);
                    newest = Some(Loaded { changed, ..load });
                }
                Ok(stale) => self.changed.set(self.changed.get() || stale.changed),
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(newest),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(CliError::Internal("the view's rows thread ended; open the view again".into()));
                }
            }
        }
    }
}

/// A pipe that wakes the loop's wait on the terminal
/// ([`terminal_wait`]): a load of rows or a remote host's answer is drawn
/// at once, not at the next key or tick.
#[derive(Clone)]
struct Wake {
    read: Arc<std::os::fd::OwnedFd>,
    write: Arc<std::os::fd::OwnedFd>,
}

impl Wake {
    fn new() -> io::Result<Wake> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok(Wake { read: Arc::new(read), write: Arc::new(write) })
    }

    /// Wakes the wait; a full pipe is already awake.
    fn poke(&self) {
        let _ = nix::unistd::write(&*self.write, &[1]);
    }

    /// Empties the pipe.
    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&*self.read, &mut buf), Ok(n) if n > 0) {}
    }
}

/// The alternate screen in raw mode, left when dropped (also on panic).
struct ScreenGuard {
    terminal: Terminal<CrosstermBackend<io::Stdout>>,
}

impl ScreenGuard {
    fn enter() -> io::Result<ScreenGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Only the loop's thread gives the terminal back. A panic of
            // a helper thread is logged, not printed over the view: the
            // `rows` thread's end ends the view with an error, and
            // without the `screens` thread frames replay logs as before.
            if std::thread::current().name() == Some("main") {
                leave();
                previous(info);
            } else {
                tracing::error!(panic = %info, "a thread of the agent view panicked");
            }
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

/// After a diff or merge shown on the main screen: waits for Enter, so
/// what it printed can be read before the view comes back.
fn wait_for_enter() {
    let mut out = io::stdout().lock();
    let _ = write!(out, "\n-- press Enter to return to the view --");
    let _ = out.flush();
    let mut line = String::new();
    let _ = io::stdin().read_line(&mut line);
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
/// does it would, in `cx`'s repository; returns what happened, or what
/// was tried and why it failed, in one line.
fn carry_out(cx: &Context, tandem: &Tandem, action: &Action) -> String {
    match act(cx, tandem, action) {
        Ok(done) => done,
        Err(e) => format!("could not {}: {e}", attempt(action)),
    }
}

/// What `action` tries to do, for its error: `approve fix-login`.
fn attempt(action: &Action) -> String {
    match action {
        Action::Quit => "quit".to_owned(),
        Action::Attach(name) => format!("attach to {name}"),
        Action::Send { name, .. } => format!("send to {name}"),
        Action::Approve(name) => format!("approve {name}"),
        Action::Deny(name) => format!("deny {name}"),
        Action::Stop(name) => format!("stop {name}"),
        Action::Respawn(name) => format!("respawn {name}"),
        Action::Fork(name) => format!("fork {name}"),
        Action::Pin { name, .. } => format!("pin {name}"),
        Action::Priority { name, .. } | Action::Status { name, .. } => format!("change {name}"),
        Action::Archive(name) => format!("archive {name}"),
        Action::Remove { name, .. } => format!("remove {name}"),
        Action::New { name, .. } => format!("start session {}", name.as_deref().unwrap_or("(generated name)")),
        Action::Restore(name) => format!("restore {name}"),
        Action::Rename { name, to } => format!("rename {name} to {to}"),
        Action::Diff(name) => format!("show the diff of {name}"),
        Action::Review(name) => format!("start a review of {name}"),
        Action::Merge(name) => format!("merge {name}"),
        Action::Turns(name) => format!("list the turns of {name}"),
        Action::TurnDiff { name, n } => format!("show the diff of checkpoint {n} of {name}"),
        Action::Rewind { name, n } => format!("rewind {name} to checkpoint {n}"),
        Action::UndoRewind(name) => format!("undo the last rewind of {name}"),
        Action::StopAll(names) => format!("stop {}", names.join(", ")),
        Action::RemoveAll(names) => {
            format!("remove {}", names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "))
        }
    }
}

fn act(cx: &Context, tandem: &Tandem, action: &Action) -> Result<String, CliError> {
    let session = |name: &str| tandem.session(&cx.cwd, name).map(|(_, _, s)| s);
    let env = crate::context::agent_env;
    let size = crossterm::terminal::size().map(|(cols, rows)| (rows, cols)).unwrap_or((24, 80));
    Ok(match action {
        Action::Quit
        | Action::Attach(_)
        | Action::Diff(_)
        | Action::Merge(_)
        | Action::Turns(_)
        | Action::TurnDiff { .. } => String::new(),
        // A rewind refused (the agent mid-turn, a bad checkpoint) changes
        // nothing; its error's text is said in the footer.
        Action::Rewind { name, n } => {
            let how = Rewind { to: Some(*n), ..Rewind::default() };
            let done = tandem.rewind(&session(name)?, &how, false)?;
            format!(
                "rewound {name} to checkpoint {} ({} written back, {} deleted); what was there is checkpoint {}: u undoes it",
                done.to.n, done.written, done.deleted, done.before.n
            )
        }
        Action::UndoRewind(name) => {
            let how = Rewind { undo: true, ..Rewind::default() };
            let done = tandem.rewind(&session(name)?, &how, false)?;
            format!(
                "undid {name}'s last rewind: back as at checkpoint {}; what was there is checkpoint {} (u undoes this too)",
                done.to.n, done.before.n
            )
        }
        Action::Send { name, text } => {
            tandem.send(&session(name)?, text, env())?;
            let shown: String = text.chars().take(60).collect();
            format!("sent to {name}: {shown}{}", if shown.len() < text.len() { "…" } else { "" })
        }
        Action::Approve(name) => {
            let asked = session(name)?;
            tandem.answer(&asked, true, None)?;
            format!("approved {name}'s request; its agent goes on")
        }
        Action::Deny(name) => {
            tandem.answer(&session(name)?, false, None)?;
            format!("denied {name}'s request; its agent was told no")
        }
        Action::Restore(name) => {
            let restored = tandem.restore(&session(name)?, env(), size)?;
            format!("restored session {} in {}", restored.session.slug, restored.session.path.display())
        }
        Action::Rename { name, to } => {
            let renamed = tandem.rename(&session(name)?, to, false)?;
            let s = &renamed.session;
            format!(
                "renamed session {name} to {} (branch {}, folder {}); `{name}` still finds it",
                s.slug,
                s.branch,
                s.path.display()
            )
        }
        Action::Review(name) => {
            let review = tandem_core::client::ReviewOf { session: &session(name)?, agent: None, name: None, size };
            let created = tandem.review(review, env())?;
            format!(
                "started review session {} ({}) of {name}; its answers go to {name}'s history",
                created.session.slug, created.session.agent
            )
        }
        Action::StopAll(names) => {
            let mut stopped = 0;
            for name in names {
                if let Stopped::Stopped(_) = tandem.stop(&session(name)?)? {
                    stopped += 1;
                }
            }
            format!("stopped {stopped} of {} sessions ({}); their worktrees stay", names.len(), names.join(", "))
        }
        Action::RemoveAll(names) => {
            let mut snapshots = 0;
            for (name, force) in names {
                let options = RemoveOptions { force: *force, ..RemoveOptions::default() };
                let (report, _) = tandem.remove(&cx.cwd, name, options, env())?;
                snapshots += usize::from(report.archive_ref.is_some());
            }
            let all = names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
            match snapshots {
                0 => format!("removed {} sessions ({all})", names.len()),
                n => {
                    format!("removed {} sessions ({all}); {n} snapshot(s) kept under refs/tandem/archive", names.len())
                }
            }
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
                name: name.clone(),
                agent: agent.clone(),
                prompt: prompt.clone(),
                base: base.clone(),
                rows: size.0,
                cols: size.1,
                ..CreateRequest::new(cx.cwd.clone(), env())
            };
            let created = tandem.create(request)?;
            format!(
                "started session {} ({}) in {}",
                created.session.slug,
                created.session.agent,
                created.session.path.display()
            )
        }
    })
}

/// The checkpoints of session `name` (found from `cx`'s folder), newest
/// first.
fn turns_of(cx: &Context, tandem: &Tandem, name: &str) -> Result<Vec<tandem_core::model::Checkpoint>, CliError> {
    let (_, _, session) = tandem.session(&cx.cwd, name)?;
    Ok(tandem.checkpoints(&session)?)
}

/// The rows of the repository at `root` (`None`: of every repository, through
/// [`Tandem::rows_everywhere`], as `tandem list --all`), live and
/// archived, from the supervisor's cached facts, with each agent's last
/// message; each with its repository's main worktree. `quiet`:
/// `supervisor.quiet_secs`, for agents whose state is inferred.
fn load_rows(
    cx: &Context,
    tandem: &Tandem,
    root: Option<&std::path::Path>,
    quiet: u64,
) -> Result<Vec<(PathBuf, Vec<SessionRow>)>, CliError> {
    let mut out: Vec<(PathBuf, Vec<SessionRow>)> = Vec::new();
    for archived in [false, true] {
        let listed = match root {
            None => tandem.rows_everywhere(archived, quiet, true)?,
            Some(root) => vec![(root.to_owned(), tandem.rows(&cx.cwd, archived, quiet, true)?)],
        };
        for (root, listing) in listed {
            match out.iter_mut().find(|(r, _)| *r == root) {
                Some((_, rows)) => rows.extend(listing.rows),
                None => out.push((root, listing.rows)),
            }
        }
    }
    Ok(out)
}

/// Waits up to `timeout` for input on the terminal (stdin) or a poke of
/// `wake` (emptied after); `true` when the terminal has hung up instead: `poll(2)` reports `POLLHUP`, `POLLERR` or
/// `POLLNVAL` (a pty whose master side closed). Then nothing can be read
/// or drawn, and the view ends.
fn terminal_wait(timeout: Duration, wake: &Wake) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN), PollFd::new(wake.read.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let hung_up = match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)),
        Err(_) => false,
    };
    wake.drain();
    hung_up
}
