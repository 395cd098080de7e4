//! The per-session host: the small process that owns one agent's PTY.
//!
//! The supervisor starts one host per session (forked by its host
//! template, `tandem-host template`, else `tandem host`; see
//! [`crate::session::launch`]), writes a [`HostSpec`] frame to its stdin
//! and reads one [`HostReady`] frame from its stdout, both carrying the
//! host protocol version ([`crate::protocol`], "Versions"). The host then
//! runs on its own (new Unix session, no terminal), so it outlives the
//! supervisor, even a `kill -9` of it, and upgrades of tandem: clients
//! of any host protocol version in its range attach to it.
//!
//! - the agent runs in a PTY as the leader of its own process group;
//! - every byte it writes goes to a `vt100` emulator, the raw log
//!   (`sessions/<id>/pty.log`) and each attached client;
//! - clients connect to `run/h/<id>.sock` directly (no supervisor in the
//!   path): attach (redraw, then output both ways, resize), logs (text,
//!   then output) or control (stop);
//! - when the agent exits, the host records `exited` with the code (or
//!   `stopped` if a stop was asked) in the store, tells its clients, and
//!   exits.
//!
//! Threads, not async: the main thread waits for the agent, one reads
//! the PTY, one accepts, a `typer` types prompts while there are any, and
//! each client has a reader and a writer. The supervisor's host template
//! forks hosts (`template.rs`); an idle host holds no store connection. A client that
//! falls [`CLIENT_QUEUE`] frames behind is dropped rather than slowing the
//! agent.
//!
//! This file is what a host is: its shared state (`Shared`), [`main`]
//! (spec in, agent started, report out) and `start`, which starts the
//! threads. Each other file has one job:
//! - `spec.rs`: the spec and the report, and the host protocol versions
//!   a host speaks with the supervisor and its clients;
//! - `child.rs`: the agent's process: started in a PTY or with pipes,
//!   its terminal's size, stopped, waited for;
//! - `output.rs`: the agent's output to the screen, the log and clients;
//! - `structured.rs`: a structured agent's driver loop (JSON lines);
//! - `input.rs`: prompts and answers to the agent (the `typer`);
//! - `server.rs`: the host's socket: accept, hello, attach, logs,
//!   control, each client's frames;
//! - `hook_channel.rs`: a sandboxed session's hook events;
//! - `template.rs`: the process that forks each new host (public);
//! - `screen.rs`: the emulator, the PTY log, redraw (public);
//! - `client.rs`: reaching a host from a command (public).

mod child;
pub mod client;
mod hook_channel;
mod input;
mod output;
pub mod screen;
mod server;
mod spec;
mod structured;
pub mod template;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{MasterPty, PtySize};

use crate::agent::driver::Driver;
use crate::paths::Paths;
use crate::protocol::{self, HOST_PROTOCOL_MIN, HOST_PROTOCOL_VERSION, HostMsg};
use crate::store::{SessionState, Store};

pub use child::{MAX_COLS, MAX_ROWS, MIN_COLS, MIN_ROWS, usable_size};
use child::{spawn_piped, spawn_pty, wait_for_agent};
use hook_channel::serve_hook_channel;
use output::{pump_output, show};
pub use spec::{HostReady, HostSpec, OLD_PROTOCOL_VAR};
use spec::{SPOKEN, old_protocol, protocol_6, read_spec};
use structured::{pump_stream, write_lines};

/// Frames a client may fall behind before it is dropped.
pub const CLIENT_QUEUE: usize = 1024;

/// Errors that end a host before its agent runs.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read the host spec")]
    Spec(#[source] io::Error),
    /// The spec's version is not one this host speaks: the supervisor
    /// runs another release than the binary it started.
    #[error(
        "the supervisor speaks host protocol {version}, the installed `tandem host` {}..={}; run `tandem daemon stop`, and the next command starts the installed tandem's supervisor",
        HOST_PROTOCOL_MIN,
        HOST_PROTOCOL_VERSION
    )]
    Version { version: u32 },
    #[error("cannot prepare the session folder or socket")]
    Io(#[from] io::Error),
    #[error("cannot open the store")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start the agent `{program}`: {message}")]
    Spawn { program: String, message: String },
}

enum Out {
    Data(Vec<u8>),
    Msg(HostMsg),
}

/// How the agent ended: the state recorded and its exit code.
type AgentEnd = (SessionState, Option<i32>);

struct Client {
    id: u64,
    tx: SyncSender<Out>,
    /// Whether it gets the agent's output (attach, logs -f) or only
    /// control messages (stop).
    output: bool,
    /// Whether it is a terminal attached to the session.
    attached: bool,
}

struct Shared {
    session_id: String,
    paths: Paths,
    agent_pid: i32,
    /// The emulator and the log: locked together so a new client's redraw
    /// and its place in `clients` see the same bytes.
    screen: Mutex<(vt100::Parser, screen::PtyLog)>,
    clients: Mutex<Vec<Client>>,
    next_client: AtomicU64,
    /// Client writer threads still running: the host waits for them to
    /// flush the last output and `exited` before it exits.
    writers: AtomicUsize,
    writer: Mutex<Box<dyn Write + Send>>,
    /// The PTY; none for a structured agent, which has pipes.
    master: Mutex<Option<Box<dyn MasterPty + Send>>>,
    /// A structured agent (no PTY): input lines are JSON, output lines
    /// are parsed; its protocol's driver ([`crate::agent::driver`]).
    structured: bool,
    driver: Mutex<Option<Box<dyn Driver>>>,
    /// Claude Code (either way): Esc interrupts its TUI.
    claude: bool,
    /// When a terminal agent last wrote output; none before its first.
    last_output: Mutex<Option<Instant>>,
    /// Prompts for a terminal agent, typed in order by a `typer`
    /// thread once the agent takes input ([`input::prompt`]).
    typer: Mutex<input::Typer>,
    stop_requested: AtomicBool,
    /// Set once the agent has exited: its final state and code.
    exit: (Mutex<Option<AgentEnd>>, Condvar),
    /// The store connection, open only while the host writes (see
    /// [`store_of`]); a structured agent's stays open, as it records
    /// every line.
    store: Mutex<Option<Store>>,
    /// The agent's secret values, masked in whatever the host stores.
    secrets: Vec<String>,
    /// The inode of the socket file this host bound.
    socket_inode: u64,
    /// [`HostSpec::cleanup`].
    cleanup: Option<Vec<String>>,
    /// Debug builds: the one host protocol version a host of an older
    /// release speaks ([`OLD_PROTOCOL_VAR`]).
    old_protocol: Option<u32>,
}

/// The host's store connection, opened when none is: a terminal agent's
/// host holds none between writes (it writes twice, when the agent
/// starts and when it ends), for an open SQLite connection holds 200–300
/// KiB (its schema, caches and lookaside), which would be most of an
/// idle host's memory (issue 23, target 3). One that stays open is moved
/// to the database file now at its path when the one it opened was
/// deleted or replaced (issue 17, finding 7), so what it records reaches
/// the file the next supervisor serves.
///
/// # Errors
/// [`crate::store::StoreError`] when the database cannot be opened, or
/// is gone (a host never makes a new one).
fn store_of(shared: &Shared) -> Result<StoreGuard<'_>, crate::store::StoreError> {
    let mut slot = lock(&shared.store);
    match slot.as_mut() {
        Some(store) => {
            if let Err(e) = store.reopen_if_replaced() {
                tracing::warn!(error = %e, "cannot open the database that replaced ours");
            }
        }
        None => {
            let path = shared.paths.database();
            if !path.exists() {
                return Err(crate::store::StoreError::Gone { path });
            }
            let mut store = Store::open(&path)?;
            store.redact_secrets(shared.secrets.clone());
            *slot = Some(store);
        }
    }
    Ok(StoreGuard(slot))
}

/// Closes the store connection of a terminal agent's host until its next
/// write ([`store_of`]), and gives the memory back to the kernel.
fn close_store(shared: &Shared) {
    if shared.structured {
        return;
    }
    lock(&shared.store).take();
    crate::process::release_free_memory();
}

/// The open store connection [`store_of`] returns, locked.
struct StoreGuard<'a>(MutexGuard<'a, Option<Store>>);

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0.as_ref().expect("store_of opened it")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicked thread cannot leave these structures half-updated in a
    // way that matters more than losing the session: keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads the [`HostSpec`] from stdin, starts the agent, reports on stdout
/// and serves clients until the agent has exited and its clients were
/// told.
///
/// # Errors
/// [`HostError`] when the agent cannot be started; it is reported on
/// stdout and in the store first. [`HostError::Spec`] (nothing reported)
/// when no spec can be read.
pub fn main(paths: &Paths) -> Result<(), HostError> {
    // Leave the supervisor's session and process group: a signal to either
    // (or its death) must not reach the agent.
    let _ = nix::unistd::setsid();
    // One malloc arena for the few threads of a host: glibc would give
    // each thread that allocates its own (issue 23, target 3).
    crate::process::limit_malloc_arenas(1);
    let (spec, line) = read_spec(&mut io::stdin().lock())?;
    let mut stdout = io::stdout().lock();
    let report = |out: &mut io::StdoutLock<'_>, ready: &HostReady| {
        let _ = if line {
            writeln!(out, "{}", serde_json::to_string(ready).expect("HostReady serializes"))
        } else {
            protocol::send(out, ready)
        };
        let _ = out.flush();
    };
    let version = spec["version"].as_u64().map_or(protocol_6(), |v| u32::try_from(v).unwrap_or(u32::MAX));
    let session_id = spec["session_id"].as_str().unwrap_or_default().to_owned();
    let started = if SPOKEN.contains(&version) {
        serde_json::from_value::<HostSpec>(spec)
            .map_err(|e| HostError::Spec(io::Error::other(e)))
            .and_then(|spec| start(paths, &spec))
    } else {
        Err(HostError::Version { version })
    };
    match started {
        Ok((shared, reader_done)) => {
            let host_pid = std::process::id() as i32;
            report(&mut stdout, &HostReady::Running { version, host_pid, agent_pid: shared.agent_pid });
            drop(stdout);
            // What starting took (the spec, the store's first write) is
            // freed: its pages go back before the host waits, for hours
            // perhaps (issue 23, target 3).
            crate::process::release_free_memory();
            serve(&shared, &reader_done);
            Ok(())
        }
        Err(e) => {
            let message = crate::error_chain(&e);
            if let Ok(store) = Store::open(&paths.database()) {
                let _ = store.set_state(&session_id, SessionState::Exited, Some(127));
            }
            let version = if SPOKEN.contains(&version) { version } else { HOST_PROTOCOL_VERSION };
            report(&mut stdout, &HostReady::Failed { version, message });
            Err(e)
        }
    }
}

/// Records that the agent runs (its host's and its own pid), in a
/// short-lived child process while the host is still single-threaded
/// (its forwards' sockets are bound, not yet served):
/// an SQLite connection takes 200–300 KiB of heap and maps SQLite's
/// code, and a host that opened one kept a third of that as holes in its
/// heap and the code pages for as long as it lived, hours perhaps (issue
/// 23, target 3). When the child cannot be made or fails, the host
/// writes itself (and so reports the error).
///
/// # Errors
/// [`crate::store::StoreError`] when the store cannot be opened or
/// written.
#[allow(unsafe_code)] // fork(2), which nix marks unsafe
fn record_running(database: &std::path::Path, session_id: &str, agent_pid: i32) -> Result<(), HostError> {
    let host_pid = std::process::id() as i32;
    let write = || Store::open(database).and_then(|store| store.set_running(session_id, host_pid, agent_pid));
    if template::thread_count() == Some(1) {
        // SAFETY: the process is single-threaded (checked just above), so
        // the child's copy of every lock and allocator state is consistent.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => std::process::exit(i32::from(write().is_err())),
            Ok(nix::unistd::ForkResult::Parent { child }) => loop {
                match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => return Ok(()),
                    Err(nix::errno::Errno::EINTR) => {}
                    Ok(nix::sys::wait::WaitStatus::Exited(..) | nix::sys::wait::WaitStatus::Signaled(..)) | Err(_) => {
                        break;
                    }
                    Ok(_) => {}
                }
            },
            Err(_) => {}
        }
    }
    write()?;
    Ok(())
}

/// Starts the agent and the host's threads: the host's state, and what
/// tells [`serve`] the agent's output has been read to its end.
fn start(paths: &Paths, spec: &HostSpec) -> Result<(Arc<Shared>, mpsc::Receiver<()>), HostError> {
    let dir = paths.session_dir(&spec.session_id);
    crate::paths::create_private_dir(&dir)?;
    paths.ensure_runtime_dir().map_err(io::Error::other)?;
    let secrets = crate::secrets::secret_values(&spec.env);
    let database = paths.database();
    if !database.exists() {
        return Err(crate::store::StoreError::Gone { path: database }.into());
    }
    let listener = crate::socket::bind(&paths.host_socket(&spec.session_id))?;
    let socket_inode = crate::socket::inode(&paths.host_socket(&spec.session_id));

    let (rows, cols) = if usable_size(spec.rows, spec.cols) { (spec.rows, spec.cols) } else { (24, 80) };
    let size = PtySize { rows, cols, pixel_width: 0, pixel_height: 0 };
    let forwards = crate::sandbox::bind_forwards(&spec.forwards)?;
    let driver = crate::agent::driver(&spec.agent, &spec.cwd, &spec.conversation);
    let structured = driver.is_some();
    let (agent_pid, reader, writer, master) = if structured { spawn_piped(spec)? } else { spawn_pty(spec, size)? };
    if let Err(e) = record_running(&database, &spec.session_id, agent_pid) {
        // Not left running unrecorded: the host reports the error and ends.
        crate::process::signal_group(agent_pid, nix::sys::signal::Signal::SIGKILL);
        return Err(e);
    }
    crate::sandbox::serve_forwards(forwards)?;
    screen::write_size(&dir, size.rows, size.cols)?;

    let shared = Arc::new(Shared {
        session_id: spec.session_id.clone(),
        paths: paths.clone(),
        agent_pid,
        screen: Mutex::new((screen::live_emulator(size.rows, size.cols), {
            let mut log = screen::PtyLog::open(&dir)?;
            log.redact_secrets(&secrets);
            log
        })),
        clients: Mutex::new(Vec::new()),
        next_client: AtomicU64::new(1),
        writers: AtomicUsize::new(0),
        writer: Mutex::new(writer),
        master: Mutex::new(master),
        structured,
        driver: Mutex::new(driver),
        claude: crate::agent::is_claude(&spec.agent),
        last_output: Mutex::new(None),
        typer: Mutex::new(input::Typer::default()),
        stop_requested: AtomicBool::new(false),
        exit: (Mutex::new(None), Condvar::new()),
        store: Mutex::new(None),
        secrets,
        socket_inode,
        cleanup: spec.cleanup.clone(),
        old_protocol: old_protocol(),
    });
    if structured {
        // No hook records a structured agent's prompts: the host does.
        if let Some(text) = &spec.typed_input {
            show(&shared, &format!("› {text}\r\n"));
            let event = crate::store::NewEvent {
                session_id: &spec.session_id,
                kind: crate::store::EventKind::Prompt,
                text: text.clone(),
                data: None,
                indexed: true,
            };
            store_of(&shared)?.add_events(&[event])?;
        }
        let mut driver = lock(&shared.driver);
        let lines = driver.as_mut().map(|d| d.start(spec.typed_input.as_deref())).unwrap_or_default();
        write_lines(&shared, &lines);
    } else {
        if let Some(input) = &spec.typed_input {
            let _ = lock(&shared.writer).write_all(input.as_bytes());
        }
    }

    let reader_done = {
        let shared = Arc::clone(&shared);
        let (tx, rx) = mpsc::channel::<()>();
        thread::Builder::new().name("pty-reader".into()).spawn(move || {
            if shared.structured {
                pump_stream(&shared, reader);
            } else {
                pump_output(&shared, reader);
            }
            let _ = tx.send(());
        })?;
        rx
    };
    {
        let shared = Arc::clone(&shared);
        thread::Builder::new().name("accept".into()).spawn(move || server::accept(&shared, &listener))?;
    }
    if spec.sandboxed {
        let socket = paths.hook_socket(&spec.session_id);
        let listener = crate::socket::bind(&socket)?;
        let shared = Arc::clone(&shared);
        let env = spec.env.clone();
        thread::Builder::new()
            .name("hook-accept".into())
            .spawn(move || serve_hook_channel(&shared, &listener, &env))?;
        if let Ok(repo) = crate::repo::Repository::discover(&spec.cwd) {
            let (paths, id) = (paths.clone(), spec.session_id.clone());
            thread::Builder::new().name("sandbox-sync".into()).spawn(move || {
                crate::sandbox_git::follow(&paths, &repo, &id);
            })?;
        }
    }
    Ok((shared, reader_done))
}

/// Waits for the agent on the calling thread (the host's main thread,
/// which has nothing else to do: one thread stack fewer per idle host),
/// records its end, and returns once clients were told.
fn serve(shared: &Shared, reader_done: &mpsc::Receiver<()>) {
    wait_for_agent(shared, reader_done);
    // Give client writers a moment to flush the last output and `exited`
    // (their queues were closed when the agent's end was recorded).
    let deadline = Instant::now() + Duration::from_millis(500);
    while shared.writers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    crate::socket::remove_if_ours(&shared.paths.host_socket(&shared.session_id), shared.socket_inode);
    let _ = std::fs::remove_file(shared.paths.hook_socket(&shared.session_id));
}
