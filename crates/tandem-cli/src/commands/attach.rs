use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use tandem_core::config::Config;
use tandem_core::error::{ErrorKind, Failure};
use tandem_core::host::client;
use tandem_core::protocol::{self, ClientMode, ClientMsg, HostMsg, KIND_CONTROL, KIND_DATA};
use tandem_core::store::{Session, SessionState};

use crate::commands::list::state_text;
use crate::context::Context;
use crate::error::CliError;
use crate::terminal::{self, AltScreenFilter, RawMode};

/// Attach this terminal to a session's agent; the detach key leaves it
/// running
#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &AttachArgs) -> Result<(), CliError> {
    let (_, config, session) = cx.named(args.name.as_deref())?;
    attach(cx, &session, &config)
}

/// The key that detaches: a control byte, and its kitty keyboard protocol
/// form (`CSI codepoint ; 5 u`), which the terminal sends instead while an
/// agent has that protocol on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKey {
    byte: u8,
    csi_u: Vec<u8>,
    label: String,
}

impl DetachKey {
    /// Parses `ctrl-X` (also `c-X`, `^X`) where X is a letter or one of
    /// `\ ] ^ _ @`.
    pub fn parse(text: &str) -> Result<DetachKey, CliError> {
        let lower = text.trim().to_ascii_lowercase();
        let rest = ["ctrl-", "ctrl+", "c-", "^"].iter().find_map(|p| lower.strip_prefix(p));
        let key = match rest.map(|r| r.chars().collect::<Vec<_>>()).as_deref() {
            Some([c]) if c.is_ascii_lowercase() || "\\]^_@".contains(*c) => *c,
            _ => {
                return Err(CliError::user(format!(
                    "detach key `{text}` is not a control key; set attach.detach_key (or TANDEM_DETACH_KEY) to e.g. `ctrl-q` or `ctrl-\\`"
                )));
            }
        };
        Ok(DetachKey {
            byte: (key.to_ascii_uppercase() as u8) & 0x1f,
            csi_u: format!("\x1b[{};5", key as u32).into_bytes(),
            label: format!("ctrl-{key}"),
        })
    }

    /// Where the key is in `input`: `(start, len)`.
    pub fn find(&self, input: &[u8]) -> Option<(usize, usize)> {
        for (i, &b) in input.iter().enumerate() {
            if b == self.byte {
                return Some((i, 1));
            }
            if input[i..].starts_with(&self.csi_u) {
                let tail = &input[i + self.csi_u.len()..];
                // `u`, or with an event type: `:1u` (press).
                for end in [&b"u"[..], b":1u"] {
                    if tail.starts_with(end) {
                        return Some((i, self.csi_u.len() + end.len()));
                    }
                }
            }
        }
        None
    }
}

/// Starts `session`'s agent again if the supervisor stopped it for
/// idleness, resuming its conversation, and says so on stderr (issue 19:
/// `attach`, `send`, `approve` and `deny` bring such a session back by
/// themselves). Returns the session as it is now; any other session is
/// returned as it is.
///
/// # Errors
/// The supervisor cannot be reached, or the agent does not start.
pub fn wake(cx: &Context, session: &Session) -> Result<Session, CliError> {
    if tandem_core::session::idle_stop::idle_stopped(&cx.paths, session).is_none() {
        return Ok(session.clone());
    }
    let size = if std::io::stdout().is_terminal() { crossterm::terminal::size().ok() } else { None };
    let (cols, rows) = size.unwrap_or((80, 24));
    let (now, woken) = cx.tandem()?.wake(session, crate::context::agent_env(), (rows, cols))?;
    if let Some(woken) = woken {
        eprintln!("note: {}", tandem_core::text::visible(&woken.said(&session.slug)));
    }
    Ok(now)
}

/// The error for attaching to a session whose agent does not run: why,
/// and the command that starts it again.
fn not_running(session: &Session) -> CliError {
    let slug = &session.slug;
    let state = state_text(session);
    let message = format!("session {slug} is not running ({state})");
    let failure = match tandem_core::session::facts::live_state(session) {
        SessionState::Creating => Failure::new(ErrorKind::Conflict, format!("{message}; wait until it runs")),
        SessionState::Archived => {
            Failure::new(ErrorKind::Conflict, message).hinted(format!("bring it back with `tandem restore {slug}`"))
        }
        _ => Failure::new(ErrorKind::Conflict, message).hinted(format!("start it again with `tandem respawn {slug}`")),
    };
    failure.into()
}

enum End {
    Detached,
    Exited(SessionState, Option<i32>),
    HostGone,
}

/// Attaches the terminal to a running session until the detach key, the
/// agent's exit or the host's end. A session the supervisor stopped for
/// idleness is started again first ([`wake`]).
pub fn attach(cx: &Context, session: &Session, config: &Config) -> Result<(), CliError> {
    let key = DetachKey::parse(&config.attach.detach_key)?;
    // Without a terminal the attach is refused below: wake nothing then.
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let session = &if terminal { wake(cx, session)? } else { session.clone() };
    let not_running = || not_running(session);
    if tandem_core::session::facts::live_state(session) != SessionState::Running {
        return Err(not_running());
    }
    if !terminal {
        return Err(CliError::user(format!(
            "tandem attach needs a terminal; run it in one, or read the output with `tandem logs {}`",
            session.slug
        )));
    }
    let (cols, rows) = crossterm::terminal::size()?;
    let stream =
        client::connect(&cx.paths, &session.id, ClientMode::Attach { rows, cols }).map_err(|_| not_running())?;
    let conn = Conn::local(stream)?;
    run_attached(&session.slug, &key, conn, rows, cols)
}

/// An attach stream: the host's frames to read, a writer for ours, and
/// how to end it (a local host's socket, or the `ssh` channel to a
/// remote one's).
pub(crate) struct Conn {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    pub close: Arc<dyn Fn() + Send + Sync>,
}

impl Conn {
    fn local(stream: UnixStream) -> Result<Conn, CliError> {
        let closer = stream.try_clone()?;
        Ok(Conn {
            reader: Box::new(stream.try_clone()?),
            writer: Box::new(stream),
            close: Arc::new(move || {
                let _ = closer.shutdown(std::net::Shutdown::Both);
            }),
        })
    }
}

/// Runs an attach on this terminal over `conn` until the detach key,
/// the agent's exit or the stream's end.
pub(crate) fn run_attached(slug: &str, key: &DetachKey, conn: Conn, rows: u16, cols: u16) -> Result<(), CliError> {
    let Conn { reader, writer, close } = conn;
    eprint!("attaching to {} (detach: {})\r\n", tandem_core::text::visible(slug), key.label);
    let writer = Arc::new(Mutex::new(writer));
    let done = Arc::new(AtomicBool::new(false));
    let detached = Arc::new(AtomicBool::new(false));
    let raw = RawMode::enable()?;

    let input = {
        let (writer, done, detached, key, close) =
            (Arc::clone(&writer), Arc::clone(&done), Arc::clone(&detached), key.clone(), Arc::clone(&close));
        std::thread::spawn(move || forward_input(&writer, &done, &detached, &key, &*close))
    };
    // Killed while attached (TERM, HUP, INT): end the attach as the
    // detach key does, so the terminal is restored by the same path.
    let killed = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGHUP, SIGINT])?;
    let signal_handle = signals.handle();
    {
        let (writer, killed, close) = (Arc::clone(&writer), Arc::clone(&killed), Arc::clone(&close));
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if signal == SIGWINCH {
                    if let Ok((cols, rows)) = crossterm::terminal::size() {
                        let mut w = writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let _ = protocol::send(&mut *w, &ClientMsg::Resize { rows, cols });
                    }
                } else {
                    killed.store(signal, Ordering::SeqCst);
                    close();
                    // Should the output stay stuck (a terminal that reads
                    // nothing), never leave it raw.
                    std::thread::sleep(KILL_GRACE);
                    terminal::restore_unlocked();
                    std::process::exit(128 + signal);
                }
            }
        });
    }

    let shown = tandem_core::text::visible(slug);
    let hint = format!(" tandem: attached to {shown} · {} detaches; the agent keeps running ", key.label);
    {
        // The hint stays on the bottom row for a moment, then the host's
        // screen is drawn over it again.
        let (writer, done) = (Arc::clone(&writer), Arc::clone(&done));
        std::thread::spawn(move || {
            std::thread::sleep(HINT_TIME);
            if !done.load(Ordering::SeqCst) {
                let mut w = writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = protocol::send(&mut *w, &ClientMsg::Redraw);
            }
        });
    }
    let end = pump_output(reader, &writer, &detached, &overlay(&hint, rows, cols));
    done.store(true, Ordering::SeqCst);
    let _ = input.join();
    drop(raw);
    let slug = shown;
    let signal = killed.load(Ordering::SeqCst);
    if signal != 0 {
        eprintln!("\r\nended by a signal; session {slug} keeps running (`tandem attach {slug}` to return)");
        std::process::exit(128 + signal);
    }
    signal_handle.close();
    match end {
        End::Detached => eprintln!("\r\ndetached from {slug}; it keeps running (`tandem attach {slug}` to return)"),
        End::Exited(SessionState::Stopped, _) => eprintln!("\r\nsession {slug} was stopped"),
        End::Exited(_, code) => {
            let code = code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            eprintln!("\r\nthe agent of session {slug} exited (code {code}); its worktree stays")
        }
        End::HostGone => eprintln!("\r\nlost the connection to session {slug}'s host; see `tandem list`"),
    }
    Ok(())
}

/// How long a signalled attach waits for its output to end before it
/// restores the terminal and exits anyway.
const KILL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the detach hint shows when attaching.
const HINT_TIME: std::time::Duration = std::time::Duration::from_millis(2500);

/// Bytes that draw `text` in reverse video on the bottom row and put the
/// cursor and attributes back as they were (DECSC/DECRC).
fn overlay(text: &str, rows: u16, cols: u16) -> Vec<u8> {
    let text: String = text.chars().take(usize::from(cols)).collect();
    format!("\x1b7\x1b[{rows};1H\x1b[0;7m{text}\x1b[0m\x1b8").into_bytes()
}

/// Copies the host's output to the terminal, drawing `first_overlay` once
/// over the first screenful, until the session ends or the user detaches.
/// The terminal stays on the alternate screen ([`AltScreenFilter`]): when
/// the agent leaves its own, the host is asked (on `writer`) to draw its
/// main screen again.
fn pump_output(
    mut stream: Box<dyn Read + Send>,
    writer: &Mutex<Box<dyn Write + Send>>,
    detached: &AtomicBool,
    first_overlay: &[u8],
) -> End {
    let mut out = std::io::stdout().lock();
    let mut overlay = Some(first_overlay);
    let mut filter = AltScreenFilter::default();
    loop {
        match protocol::read_frame(&mut stream) {
            Ok(Some((KIND_DATA, bytes))) => {
                let (bytes, left_screen) = filter.filter(&bytes);
                if left_screen {
                    let mut w = writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let _ = protocol::send(&mut *w, &ClientMsg::Redraw);
                }
                let mut written = out.write_all(&bytes);
                if let Some(extra) = overlay.take() {
                    written = written.and_then(|()| out.write_all(extra));
                }
                if written.and_then(|()| out.flush()).is_err() {
                    return End::HostGone;
                }
            }
            Ok(Some((KIND_CONTROL, payload))) => {
                if let Ok(HostMsg::Exited { state, exit_code }) = serde_json::from_slice(&payload) {
                    return End::Exited(state, exit_code);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return if detached.load(Ordering::SeqCst) { End::Detached } else { End::HostGone };
            }
        }
    }
}

fn forward_input(
    writer: &Mutex<Box<dyn Write + Send>>,
    done: &AtomicBool,
    detached: &AtomicBool,
    key: &DetachKey,
    close: &(dyn Fn() + Send + Sync),
) {
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 4096];
    while !done.load(Ordering::SeqCst) {
        let handle = std::io::stdin();
        let mut fds = [PollFd::new(handle.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut w = writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match key.find(&buf[..n]) {
            Some((at, _)) => {
                if at > 0 {
                    let _ = protocol::write_frame(&mut *w, KIND_DATA, &buf[..at]);
                }
                detached.store(true, Ordering::SeqCst);
                drop(w);
                close();
                break;
            }
            None => {
                if protocol::write_frame(&mut *w, KIND_DATA, &buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_and_match_both_encodings() {
        let key = DetachKey::parse("ctrl-\\").expect("default parses");
        assert_eq!(key.find(b"abc\x1cdef"), Some((3, 1)));
        assert_eq!(key.find(b"ab\x1b[92;5uc"), Some((2, 7)));
        assert_eq!(key.find(b"ab\x1b[92;5:1u"), Some((2, 9)));
        assert_eq!(key.find(b"plain \x1b[A text"), None);
        let q = DetachKey::parse("Ctrl-Q").expect("parses");
        assert_eq!(q.find(b"\x11"), Some((0, 1)));
        for bad in ["q", "ctrl-", "ctrl-qq", "alt-q", "ctrl-["] {
            assert!(DetachKey::parse(bad).is_err(), "{bad}");
        }
    }
}
