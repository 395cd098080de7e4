//! The agent's process, the host's one child: started in a PTY
//! ([`spawn_pty`]) or, for a structured agent, with pipes
//! ([`spawn_piped`]); its terminal's size ([`resize`]); stopped
//! ([`request_stop`]) and waited for, its end recorded
//! ([`wait_for_agent`]).

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};

use crate::process;
use crate::protocol::HostMsg;
use crate::store::SessionState;

use super::output::broadcast;
use super::{HostError, HostSpec, Out, Shared, lock, screen, store_of};

/// What `start` needs of a started agent: its pid (also its process
/// group), its output, its input, and the PTY if it has one.
pub(super) type Started = (i32, Box<dyn Read + Send>, Box<dyn Write + Send>, Option<Box<dyn MasterPty + Send>>);

/// Starts the agent in a new PTY as its session leader.
pub(super) fn spawn_pty(spec: &HostSpec, size: PtySize) -> Result<Started, HostError> {
    let spawn_err =
        |message: String| HostError::Spawn { program: spec.argv.first().cloned().unwrap_or_default(), message };
    let pair = native_pty_system().openpty(size).map_err(|e| spawn_err(e.to_string()))?;
    let mut cmd = CommandBuilder::from_argv(spec.argv.iter().map(Into::into).collect());
    cmd.cwd(&spec.cwd);
    cmd.env_clear();
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if !spec.env.iter().any(|(k, _)| k == "TERM") {
        cmd.env("TERM", "xterm-256color");
    }
    let child = pair.slave.spawn_command(cmd).map_err(|e| spawn_err(e.to_string()))?;
    drop(pair.slave);
    let agent_pid = child.process_id().map_or(0, |p| p as i32);
    // We reap the agent ourselves with waitpid to get its raw status
    // (portable-pty reports a signal only by name); dropping the handle
    // neither kills nor waits.
    drop(child);
    let reader = pair.master.try_clone_reader().map_err(|e| spawn_err(e.to_string()))?;
    let writer = pair.master.take_writer().map_err(|e| spawn_err(e.to_string()))?;
    Ok((agent_pid, reader, writer, Some(pair.master)))
}

/// Starts a structured agent with pipes for stdin and stdout (stderr to
/// the host's log), as the leader of its own process group.
pub(super) fn spawn_piped(spec: &HostSpec) -> Result<Started, HostError> {
    use std::os::unix::process::CommandExt;
    let spawn_err =
        |message: String| HostError::Spawn { program: spec.argv.first().cloned().unwrap_or_default(), message };
    let (program, args) = spec.argv.split_first().ok_or_else(|| spawn_err("no command".into()))?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| spawn_err(e.to_string()))?;
    let agent_pid = i32::try_from(child.id()).unwrap_or(0);
    let stdin = child.stdin.take().ok_or_else(|| spawn_err("no stdin".into()))?;
    let stdout = child.stdout.take().ok_or_else(|| spawn_err("no stdout".into()))?;
    // Reaped with waitpid, like a PTY agent; dropping `Child` does not wait.
    drop(child);
    Ok((agent_pid, Box::new(stdout), Box::new(stdin), None))
}

/// The smallest terminal a client may size the agent's to, in cells.
/// A client that reports less (a 0×0 terminal, finding 10) is not
/// followed: the agent keeps its size rather than shrink to nothing for
/// good.
pub const MIN_ROWS: u16 = 4;

/// See [`MIN_ROWS`].
pub const MIN_COLS: u16 = 10;

/// The largest terminal a client may size the agent's to, in cells: more
/// than any screen shows. A larger size (a page may send 65535×65535) is
/// not followed: the host's screen would take it in memory, cell by cell.
pub const MAX_ROWS: u16 = 1000;

/// See [`MAX_ROWS`].
pub const MAX_COLS: u16 = 1000;

/// Whether `rows` × `cols` (cells) is at least [`MIN_ROWS`] × [`MIN_COLS`]
/// and at most [`MAX_ROWS`] × [`MAX_COLS`].
#[must_use]
pub fn usable_size(rows: u16, cols: u16) -> bool {
    (MIN_ROWS..=MAX_ROWS).contains(&rows) && (MIN_COLS..=MAX_COLS).contains(&cols)
}

pub(super) fn resize(shared: &Shared, rows: u16, cols: u16) {
    if !usable_size(rows, cols) {
        tracing::debug!(rows, cols, "ignoring a terminal size below the minimum or above the maximum");
        return;
    }
    let mut screen = lock(&shared.screen);
    if screen.0.screen().size() == (rows, cols) {
        return;
    }
    screen.0.screen_mut().set_size(rows, cols);
    if let Some(master) = lock(&shared.master).as_ref() {
        let _ = master.resize(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 });
    }
    let _ = screen::write_size(&shared.paths.session_dir(&shared.session_id), rows, cols);
}

pub(super) fn wait_for_agent(shared: &Shared, reader_done: &Receiver<()>) {
    let pid = Pid::from_raw(shared.agent_pid);
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => break Some(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break None,
        }
    };
    let stopped = shared.stop_requested.load(Ordering::SeqCst);
    if stopped {
        // The whole group goes, not just its leader.
        process::signal_group(shared.agent_pid, Signal::SIGKILL);
    }
    // Let the reader drain what the agent wrote last; a background process
    // still holding the PTY must not keep the host alive.
    let _ = reader_done.recv_timeout(Duration::from_millis(500));
    if let Some((program, args)) = shared.cleanup.as_ref().and_then(|c| c.split_first()) {
        let _ = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let state = if stopped { SessionState::Stopped } else { SessionState::Exited };
    let code = if stopped { None } else { code };
    if let Err(e) = store_of(shared).and_then(|store| store.set_state(&shared.session_id, state, code)) {
        tracing::error!(error = %e, "cannot record the agent's exit");
    }
    broadcast(shared, false, || Out::Msg(HostMsg::Exited { state, exit_code: code }));
    // Closing every sender ends the client writers after they flush.
    lock(&shared.clients).clear();
    let (exit, cvar) = &shared.exit;
    *lock(exit) = Some((state, code));
    cvar.notify_all();
}

/// Stops the agent: SIGHUP and SIGTERM to its process group (an
/// interactive shell ignores SIGTERM but not SIGHUP), then SIGKILL after
/// `grace`. Returns at once; [`wait_for_agent`] records the end.
pub(super) fn request_stop(shared: &Arc<Shared>, grace: Duration) {
    if shared.stop_requested.swap(true, Ordering::SeqCst) {
        return;
    }
    let pgid = shared.agent_pid;
    process::signal_group(pgid, Signal::SIGHUP);
    process::signal_group(pgid, Signal::SIGCONT);
    process::signal_group(pgid, Signal::SIGTERM);
    let shared = Arc::clone(shared);
    let _ = thread::Builder::new().name("stop".into()).spawn(move || {
        let (exit, cvar) = &shared.exit;
        let guard = lock(exit);
        let (guard, timeout) =
            cvar.wait_timeout_while(guard, grace, |e| e.is_none()).unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(guard);
        if timeout.timed_out() {
            process::signal_group(pgid, Signal::SIGKILL);
        }
    });
}
