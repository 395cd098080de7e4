//! Reaching the supervisor from a command, starting it when absent.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::model::error::Failure;
use crate::paths::Paths;
use crate::protocol::{self, Listed, PROTOCOL_VERSION, Request, Response};

/// How long a command waits for a supervisor it started to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors reaching the supervisor, and its refusals; each one's kind and
/// hints are in [`crate::model::error::Kinded`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The supervisor's error and the supervisor log's path.
    #[error("cannot start the supervisor: {0}; see {1}")]
    Start(String, String),
    /// Hint: `tandem daemon status`.
    #[error("the supervisor did not answer: {0}")]
    Io(#[from] io::Error),
    /// A request this side does not send: a path that is not UTF-8, or
    /// more than [`protocol::MAX_REQUEST_LEN`] bytes. The text says what
    /// to change.
    #[error("{0}")]
    Unsendable(String),
    /// The supervisor's `Response::Error`: kind, message and hints as it
    /// sent them. Its text is the message; the hints stay apart.
    #[error("{}", .0.message)]
    Remote(Failure),
}

/// A connection to the supervisor, past the version handshake.
pub struct Client {
    stream: UnixStream,
    /// The supervisor's pid.
    pub pid: u32,
}

impl Client {
    /// Sends one request and reads its response; an error response becomes
    /// [`ClientError::Remote`], keeping its kind and hints.
    ///
    /// # Errors
    /// [`ClientError::Unsendable`] before sending, [`ClientError::Io`], or
    /// [`ClientError::Remote`].
    pub fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        self.send(request)?;
        let frame = protocol::read_frame(&mut self.stream)?;
        answer(protocol::decode(frame)?)
    }

    /// [`Client::request`] for a [`Request::List`]: its answer decoded in
    /// one pass ([`Listed::decode`]).
    ///
    /// # Errors
    /// As [`Client::request`]; [`ClientError::Io`] for an answer that is
    /// neither rows nor an error.
    pub fn list(&mut self, request: &Request) -> Result<Listed, ClientError> {
        self.send(request)?;
        let frame = protocol::read_frame(&mut self.stream)?;
        if let Some((protocol::KIND_CONTROL, payload)) = &frame
            && let Some(listed) = Listed::decode(payload)?
        {
            return Ok(listed);
        }
        match answer(protocol::decode(frame)?)? {
            Response::Listed(listed) => Ok(*listed),
            _ => {
                Err(io::Error::new(io::ErrorKind::InvalidData, "the supervisor answered list with something else")
                    .into())
            }
        }
    }

    /// Writes `request` as one control frame.
    fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        // Only a path that is not UTF-8 fails here (issue 17): say so,
        // not that the supervisor "did not answer".
        let json = serde_json::to_vec(request).map_err(|e| {
            ClientError::Unsendable(format!(
                "cannot send this request: {e}; tandem keeps paths as text, so rename the file or folder to a UTF-8 name"
            ))
        })?;
        if json.len() >= protocol::MAX_REQUEST_LEN {
            return Err(ClientError::Unsendable(format!(
                "the request is {} bytes, more than the {} the supervisor takes; shorten the prompt or the environment",
                json.len(),
                protocol::MAX_REQUEST_LEN - 1
            )));
        }
        protocol::write_frame(&mut self.stream, protocol::KIND_CONTROL, &json)?;
        // A client (the CLI) killed while the supervisor works: Ctrl-C,
        // a closed terminal.
        crate::fault::point("client.sent");
        Ok(())
    }
}

/// A decoded answer: an error response becomes [`ClientError::Remote`]
/// (kind and hints kept), the end of the stream an I/O error.
fn answer(response: Option<Response>) -> Result<Response, ClientError> {
    match response {
        Some(Response::Error { kind, message, hints, causes }) => {
            Err(ClientError::Remote(Failure { kind, message, hints, causes }))
        }
        Some(response) => Ok(response),
        None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the supervisor closed the connection").into()),
    }
}

/// Connects to a running supervisor; `Ok(None)` when none listens.
/// A supervisor of another protocol version is asked to exit and counts
/// as none.
///
/// # Errors
/// I/O errors other than "nobody listens".
pub fn connect_existing(paths: &Paths) -> Result<Option<Client>, ClientError> {
    connect_running(paths, true, None)
}

/// [`connect_existing`], except that a supervisor of another protocol
/// version is left running (and counts as none): for a command that may
/// turn out not to need one (`tandem list` in a folder outside any
/// repository), which then takes the usual way.
///
/// # Errors
/// As [`connect_existing`].
pub fn connect_current(paths: &Paths) -> Result<Option<Client>, ClientError> {
    connect_running(paths, false, None)
}

/// [`connect_current`], with every read and write on the connection
/// (the handshake's too) given at most `wait`; one that takes longer
/// fails with [`ClientError::Io`] (`WouldBlock` or `TimedOut`).
///
/// # Errors
/// As [`connect_existing`].
pub fn connect_current_within(paths: &Paths, wait: Duration) -> Result<Option<Client>, ClientError> {
    connect_running(paths, false, Some(wait))
}

/// A running supervisor of this version; one of another is asked to exit
/// when `replace`. `wait`: the longest a read or write may take.
fn connect_running(paths: &Paths, replace: bool, wait: Option<Duration>) -> Result<Option<Client>, ClientError> {
    let mut stream = match UnixStream::connect(paths.supervisor_socket()) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    stream.set_read_timeout(wait)?;
    stream.set_write_timeout(wait)?;
    // A supervisor killed a moment ago may still accept, then vanish:
    // that counts as none.
    let gone = |e: &io::Error| {
        matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof)
    };
    if let Err(e) = protocol::send(&mut stream, &Request::Hello { version: PROTOCOL_VERSION }) {
        return if gone(&e) { Ok(None) } else { Err(e.into()) };
    }
    let hello = match protocol::recv::<Response>(&mut stream) {
        Err(e) if gone(&e) => return Ok(None),
        other => other?,
    };
    match hello {
        Some(Response::Hello { version, pid }) if version == PROTOCOL_VERSION => Ok(Some(Client { stream, pid })),
        Some(Response::Hello { .. }) if !replace => Ok(None),
        Some(Response::Hello { pid, .. }) => {
            // Another tandem version: replace it. Its hosts keep running.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
            wait_gone(paths);
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn wait_gone(paths: &Paths) {
    let deadline = Instant::now() + START_TIMEOUT;
    while UnixStream::connect(paths.supervisor_socket()).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects to the supervisor, starting `exe daemon run` in the
/// background first when none runs.
///
/// # Errors
/// [`ClientError::Start`] when it does not come up in time, or at once
/// with the supervisor's own error when the one started exits failing
/// (issue 17: a damaged database made every command wait ten seconds and
/// say only "it did not listen in time").
pub fn connect(paths: &Paths, exe: &Path) -> Result<Client, ClientError> {
    if let Some(client) = connect_existing(paths)? {
        return Ok(client);
    }
    let log = paths.supervisor_log().display().to_string();
    let mut started = start(paths, exe)?;
    let mut since = Instant::now();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match connect_existing(paths) {
            Ok(Some(client)) => {
                started.reap_later();
                return Ok(client);
            }
            Ok(None) | Err(_) if Instant::now() < deadline => {
                match started.exited(paths) {
                    // Another one won the lock, or a dying one still held
                    // it: wait for it, or start another.
                    Some(Exit::LostTheLock) if since.elapsed() > Duration::from_millis(500) => {
                        started = start(paths, exe)?;
                        since = Instant::now();
                    }
                    Some(Exit::LostTheLock) | None => {}
                    Some(Exit::Failed(message)) => return Err(ClientError::Start(message, log)),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                started.reap_later();
                return Err(ClientError::Start("it did not listen in time".into(), log));
            }
            Err(e) => {
                started.reap_later();
                return Err(e);
            }
        }
    }
}

/// A supervisor this command started, and where its output begins in the
/// supervisor log.
pub struct Started {
    child: Child,
    log_from: u64,
}

/// How a started supervisor ended before it listened.
enum Exit {
    /// Another supervisor holds the lock.
    LostTheLock,
    /// Its error, from the log.
    Failed(String),
}

impl Started {
    /// `None` while it runs (or ended well).
    fn exited(&mut self, paths: &Paths) -> Option<Exit> {
        let status = self.child.try_wait().ok()??;
        if status.success() {
            return None;
        }
        let mut text = String::new();
        if let Ok(mut log) = std::fs::File::open(paths.supervisor_log()) {
            use std::io::{Read as _, Seek as _};
            let _ = log.seek(io::SeekFrom::Start(self.log_from));
            let _ = log.read_to_string(&mut text);
        }
        let error = text.lines().rev().find_map(|l| l.strip_prefix("error: ")).map(str::to_owned);
        Some(match error {
            Some(e) if e.contains("already running") => Exit::LostTheLock,
            Some(e) => Exit::Failed(e),
            None => Exit::Failed(format!("it exited ({status})")),
        })
    }

    /// The supervisor outlives us; a thread reaps it if it exits first,
    /// so no zombie is left while we run.
    fn reap_later(self) {
        let mut child = self.child;
        std::thread::spawn(move || child.wait());
    }
}

/// Starts `exe daemon run` detached, its output going to the supervisor
/// log.
///
/// # Errors
/// [`ClientError::Start`].
pub fn start(paths: &Paths, exe: &Path) -> Result<Started, ClientError> {
    let log_path = paths.supervisor_log();
    let fail = |e: &dyn std::fmt::Display| ClientError::Start(e.to_string(), log_path.display().to_string());
    paths.ensure_state_dir().map_err(|e| fail(&e))?;
    paths.ensure_runtime_dir().map_err(|e| fail(&e))?;
    let log = crate::paths::append_private(&log_path).map_err(|e| fail(&e))?;
    let log_from = log.metadata().map(|m| m.len()).unwrap_or(0);
    let child = Command::new(exe)
        .args(["daemon", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| fail(&e))?;
    Ok(Started { child, log_from })
}
