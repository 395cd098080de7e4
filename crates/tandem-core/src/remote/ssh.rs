//! The link to a remote: the system `ssh`, multiplexed.
//!
//! Every exchange runs `ssh … DEST -- <tandem> proxy` with
//! `ControlMaster=auto`, `ControlPersist` and a control socket in
//! tandem's private runtime folder (`<runtime>/ssh/%C`, OpenSSH's hash of
//! the connection), so the first exchange logs in and later ones (this
//! process's or the next command's) open a channel on that connection in
//! a few milliseconds. `BatchMode` keeps ssh from asking anything on the
//! terminal; `ConnectTimeout` and a watchdog that kills the `ssh` process
//! bound how long a host that does not answer can hold a command.
//!
//! We run `ssh` ourselves rather than through the `openssh` crate: that
//! crate's session owns its control master and ends it on drop, while a
//! CLI of short-lived processes needs the master to outlive each one
//! (`ControlPersist`), and its API is async where every caller here is a
//! plain thread. The options are the same ones it passes.

use std::ffi::OsString;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::{Remote, RemoteError};
use crate::paths::Paths;
use crate::protocol::{self, REMOTE_PROTOCOL_VERSION, RemoteHello, RemoteReply, RemoteRequest, RunAt};

/// How long a control master stays after its last channel closes, in
/// seconds (OpenSSH's `ControlPersist`).
pub const CONTROL_PERSIST_SECS: u64 = 600;

/// `ssh`'s destination and port for a [`Remote::destination`]:
/// `ssh://[user@]host[:port][/]` is split, anything else is passed as it
/// is (`user@host`, an alias).
///
/// # Errors
/// [`RemoteError::BadDestination`]: empty, starting with `-` (it would be
/// read as an option), or holding spaces or control characters.
pub fn parse_destination(destination: &str) -> Result<(String, Option<u16>), RemoteError> {
    let bad = |why| Err(RemoteError::BadDestination { destination: destination.to_owned(), why });
    if destination.is_empty() {
        return bad("it is empty");
    }
    if destination.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it holds spaces or control characters");
    }
    let (host, port) = match destination.strip_prefix("ssh://") {
        Some(rest) => {
            let rest = rest.trim_end_matches('/');
            if rest.contains('/') {
                return bad("an ssh:// destination has no path");
            }
            match rest.rsplit_once(':') {
                Some((host, port)) if !host.contains(']') || host.ends_with(']') => match port.parse::<u16>() {
                    Ok(port) if port > 0 => (host.to_owned(), Some(port)),
                    _ => return bad("its port is not a number from 1 to 65535"),
                },
                _ => (rest.to_owned(), None),
            }
        }
        None => (destination.to_owned(), None),
    };
    if host.is_empty() || host.starts_with('-') || host.starts_with('@') || host.ends_with('@') {
        return bad("it names no host (or starts with `-`)");
    }
    Ok((host, port))
}

/// Single-quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A link to one remote: how to run `ssh` to it.
#[derive(Debug, Clone)]
pub struct Link {
    pub remote: Remote,
    host: String,
    port: Option<u16>,
    control_dir: PathBuf,
    /// How long an exchange may take (`remote.timeout_secs`).
    pub timeout: Duration,
}

impl Link {
    /// The link to `remote`, its control socket under `paths`' runtime
    /// folder.
    ///
    /// # Errors
    /// [`RemoteError::BadDestination`]; [`RemoteError::Io`] when the
    /// private folder cannot be made.
    pub fn new(paths: &Paths, remote: Remote, timeout: Duration) -> Result<Link, RemoteError> {
        let (host, port) = parse_destination(&remote.destination)?;
        let control_dir = paths.runtime_dir.join("ssh");
        let io = |error| RemoteError::Io { path: control_dir.clone(), error };
        paths.ensure_runtime_dir().map_err(|e| io(std::io::Error::other(e.to_string())))?;
        crate::paths::create_private_dir(&control_dir).map_err(io)?;
        Ok(Link { remote, host, port, control_dir, timeout })
    }

    /// The options every `ssh` of this link gets (before the
    /// destination): [`Link::base_options`] and the port.
    #[must_use]
    pub fn options(&self) -> Vec<OsString> {
        let mut args = self.base_options();
        if let Some(port) = self.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        args
    }

    /// The options of [`Link::options`] but the port (which git passes
    /// itself, from the URL).
    #[must_use]
    pub fn base_options(&self) -> Vec<OsString> {
        let secs = self.timeout.as_secs().max(1);
        let args: Vec<OsString> = [
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={secs}").into(),
            "-o".into(),
            "ControlMaster=auto".into(),
            "-o".into(),
            {
                let mut o = OsString::from("ControlPath=");
                o.push(self.control_dir.join("%C"));
                o
            },
            "-o".into(),
            format!("ControlPersist={CONTROL_PERSIST_SECS}").into(),
            "-o".into(),
            "ServerAliveInterval=15".into(),
            "-o".into(),
            "ServerAliveCountMax=3".into(),
        ]
        .into();
        args
    }

    /// `ssh OPTIONS DEST -- REMOTE_COMMAND`: `remote_command` is run by
    /// the remote user's shell, so it must be tandem's own fixed text.
    #[must_use]
    pub fn command(&self, remote_command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.options()).arg("-T").arg(&self.host).arg("--").arg(remote_command);
        cmd.env_remove("SSH_ASKPASS").env("LC_ALL", "C");
        cmd
    }

    /// The remote shell's command that runs tandem with `args` (fixed
    /// words): the configured path, else `tandem` with `~/.local/bin`
    /// first on `PATH` (a non-interactive ssh login leaves it out).
    #[must_use]
    pub fn tandem_command(&self, args: &str) -> String {
        match &self.remote.tandem {
            Some(path) => format!("exec {} {args}", shell_quote(path)),
            None => format!("PATH=\"$HOME/.local/bin:$PATH\" exec tandem {args}"),
        }
    }

    /// The value of `GIT_SSH_COMMAND` that makes git's ssh transport ride
    /// this link's connection (git runs it through `sh`, so each word is
    /// quoted).
    #[must_use]
    pub fn git_ssh_command(&self) -> String {
        let mut words = vec!["ssh".to_owned()];
        words.extend(self.base_options().iter().map(|o| shell_quote(&o.to_string_lossy())));
        words.join(" ")
    }

    /// `git` in `dir` (this machine's repository) with its ssh transport
    /// riding this link ([`Link::git_ssh_command`]), never asking on the
    /// terminal, stdin closed: for `git fetch`/`git push` with a
    /// [`Link::git_url`].
    #[must_use]
    pub fn git_command(&self, dir: &Path) -> Command {
        let mut cmd = crate::git::command(dir);
        cmd.env("GIT_SSH_COMMAND", self.git_ssh_command()).env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
        cmd
    }

    /// The git URL of the repository at `path` on the remote.
    ///
    /// # Errors
    /// [`RemoteError::Protocol`] for a path that is not absolute or holds
    /// characters a URL would change (the path comes from the remote).
    pub fn git_url(&self, path: &Path) -> Result<String, RemoteError> {
        let text = path.to_string_lossy();
        let safe = path.is_absolute()
            && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+@~,=".contains(c))
            && !text.contains("/../");
        if !safe {
            return Err(RemoteError::Protocol {
                name: self.remote.name.clone(),
                what: format!("a repository path tandem cannot use in a git URL: {}", crate::text::visible(&text)),
            });
        }
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        Ok(format!("ssh://{}{port}{text}", self.host))
    }

    /// Ends the control master, when one runs (`ssh -O exit`).
    pub fn close_master(&self) {
        let _ = Command::new("ssh")
            .args(self.options())
            .args(["-O", "exit"])
            .arg(&self.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs a fixed `remote_command` with `input` on its stdin, within
    /// `timeout`; answers its stdout, stderr and exit code.
    ///
    /// # Errors
    /// [`RemoteError::Unreachable`] when ssh fails (exit 255) or the
    /// command runs past `timeout`.
    pub fn exec(
        &self,
        remote_command: &str,
        input: Option<&mut dyn Read>,
        timeout: Duration,
    ) -> Result<(Vec<u8>, String, Option<i32>), RemoteError> {
        let mut child = self
            .command(remote_command)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.unreachable(format!("cannot run ssh: {e}")))?;
        let watchdog = Watchdog::start(&child, timeout);
        let stderr = collect(child.stderr.take());
        let stdout = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = out.read_to_end(&mut bytes);
                bytes
            })
        });
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = std::io::copy(input, &mut stdin);
        }
        let status = child.wait().map_err(|e| self.unreachable(e.to_string()))?;
        let fired = watchdog.disarm();
        if fired {
            // A control master may hold the output pipes open as long as
            // the host hangs: their readers are left, not waited for.
            return Err(self.unreachable(format!("no answer within {}", secs_text(timeout))));
        }
        let out = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
        let err = stderr.text();
        if status.code() == Some(255) {
            return Err(self.unreachable(last_line(&err)));
        }
        Ok((out, err, status.code()))
    }

    fn unreachable(&self, why: String) -> RemoteError {
        RemoteError::Unreachable { name: self.remote.name.clone(), why }
    }

    /// Opens a channel to `tandem proxy` and exchanges hellos, within the
    /// link's timeout.
    ///
    /// # Errors
    /// [`RemoteError::Unreachable`] (ssh failed, or no hello in time),
    /// [`RemoteError::NoTandem`], [`RemoteError::Incompatible`].
    pub fn open(&self) -> Result<Channel, RemoteError> {
        let mut child = self
            .command(&self.tandem_command("proxy"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.unreachable(format!("cannot run ssh: {e}")))?;
        let watchdog = Watchdog::start(&child, self.timeout);
        let stderr = collect(child.stderr.take());
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(LinkReader::new(child.stdout.take().expect("piped")));
        stdout.get_mut().give_up_after(Some(self.timeout));
        let sent = protocol::send(&mut stdin, &RemoteHello::ours());
        let answer = sent.and_then(|()| protocol::recv::<RemoteHello>(&mut stdout));
        stdout.get_mut().give_up_after(None);
        let mut fired = watchdog.disarm();
        if let Err(e) = &answer {
            fired = timed_out(e, fired);
        }
        match answer {
            Ok(Some(theirs)) => {
                if theirs.protocol != REMOTE_PROTOCOL_VERSION {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RemoteError::Incompatible {
                        name: self.remote.name.clone(),
                        theirs: crate::text::visible(&theirs.tandem).into_owned(),
                        their_protocol: theirs.protocol,
                        ours: env!("CARGO_PKG_VERSION").to_owned(),
                        our_protocol: REMOTE_PROTOCOL_VERSION,
                    });
                }
                Ok(Channel {
                    name: self.remote.name.clone(),
                    child,
                    stdin,
                    stdout,
                    stderr,
                    theirs,
                    timeout: self.timeout,
                })
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                if fired {
                    // Its stderr may stay open as long as the host hangs.
                    return Err(self.unreachable(format!("no answer within {}", secs_text(self.timeout))));
                }
                let err = stderr.text();
                let code = status.and_then(|s| s.code());
                if code == Some(255) {
                    return Err(self.unreachable(last_line(&err)));
                }
                if code == Some(127) || code == Some(126) || err.contains("not found") {
                    let why = if err.trim().is_empty() { "`tandem` was not found".to_owned() } else { last_line(&err) };
                    return Err(RemoteError::NoTandem { name: self.remote.name.clone(), why });
                }
                Err(RemoteError::Protocol {
                    name: self.remote.name.clone(),
                    what: format!("`tandem proxy` ended without a hello ({})", last_line(&err)),
                })
            }
        }
    }

    /// One request and its one reply, within the link's timeout (both
    /// the hellos and the exchange).
    ///
    /// # Errors
    /// As [`Link::open`] and [`Channel::ask`].
    pub fn ask(&self, request: &RemoteRequest) -> Result<RemoteReply, RemoteError> {
        self.open()?.ask(request, self.timeout)
    }
}

/// `5 s`, `1.5 s`.
fn secs_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s:.1} s") }
}

/// The last non-empty line of ssh's stderr, or a plain word when none.
fn last_line(text: &str) -> String {
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("ssh failed without saying why").to_owned()
}

/// A thread that kills a child process when a deadline passes first.
struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(child: &Child, timeout: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let thread = {
            let fired = Arc::clone(&fired);
            std::thread::spawn(move || {
                if rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                    fired.store(true, Ordering::SeqCst);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
            })
        };
        Watchdog { stop: Some(tx), fired, thread: Some(thread) }
    }

    /// Stops the watchdog; answers whether it had fired.
    fn disarm(mut self) -> bool {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.fired.load(Ordering::SeqCst)
    }
}

/// A child's stderr, read to its end on a thread (at most 64 KiB kept).
struct Collected(Option<std::thread::JoinHandle<String>>);

fn collect(stderr: Option<std::process::ChildStderr>) -> Collected {
    Collected(stderr.map(|mut err| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = (&mut err).take(64 * 1024).read_to_end(&mut bytes);
            // Drain the rest so ssh never blocks on a full pipe.
            let _ = std::io::copy(&mut err, &mut std::io::sink());
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }))
}

impl Collected {
    fn text(self) -> String {
        self.0.and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

/// The stdout of a link's `ssh`, whose reads give up at a deadline when
/// one is set (`TimedOut`).
///
/// Killing the `ssh` process does not end a read: a client of a control
/// master hands its stdio to the master, which keeps the pipe open until
/// the remote command ends (a hung proxy) or `ServerAliveInterval` gives
/// up on a frozen host (45 s); so every read that waits for an answer
/// waits at most until the exchange's deadline.
pub struct LinkReader {
    inner: ChildStdout,
    deadline: Option<std::time::Instant>,
}

impl LinkReader {
    fn new(inner: ChildStdout) -> LinkReader {
        LinkReader { inner, deadline: None }
    }

    /// Reads from now on give up `within` from now (`None`: never).
    fn give_up_after(&mut self, within: Option<Duration>) {
        self.deadline = within.map(|d| std::time::Instant::now() + d);
    }
}

impl Read for LinkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        if let Some(deadline) = self.deadline {
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(self.inner.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(0) if left.is_zero() => {
                        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"));
                    }
                    Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                    Ok(_) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.inner.read(buf)
    }
}

/// Whether a failed read or write is the deadline of [`LinkReader`] (or
/// the watchdog) passing.
fn timed_out(e: &std::io::Error, fired: bool) -> bool {
    fired || e.kind() == std::io::ErrorKind::TimedOut
}

/// An open channel to a remote's `tandem proxy`, past the hellos.
pub struct Channel {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<LinkReader>,
    stderr: Collected,
    /// The proxy's hello.
    pub theirs: RemoteHello,
    timeout: Duration,
}

impl Channel {
    fn protocol_error(&self, what: impl Into<String>) -> RemoteError {
        RemoteError::Protocol { name: self.name.clone(), what: what.into() }
    }

    fn lost(&mut self, e: &std::io::Error) -> RemoteError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        RemoteError::Unreachable { name: self.name.clone(), why: format!("the link broke: {e}") }
    }

    /// Sends `request` and reads its one reply within `timeout`. A
    /// [`RemoteReply::Error`] becomes [`RemoteError::Refused`].
    ///
    /// # Errors
    /// [`RemoteError::Unreachable`] when the link breaks or the reply is
    /// late; [`RemoteError::Refused`].
    pub fn ask(mut self, request: &RemoteRequest, timeout: Duration) -> Result<RemoteReply, RemoteError> {
        let watchdog = Watchdog::start(&self.child, timeout);
        self.stdout.get_mut().give_up_after(Some(timeout));
        // A reply may already be on its way when the request cannot be
        // written (a proxy that answered and left): read it either way.
        let sent = protocol::send(&mut self.stdin, request);
        let reply = match protocol::recv(&mut self.stdout) {
            Ok(None) => sent.map(|()| None),
            other => other,
        };
        let mut fired = watchdog.disarm();
        if let Err(e) = &reply {
            fired = timed_out(e, fired);
        }
        let reply = match reply {
            Ok(Some(reply)) => reply,
            Ok(None) | Err(_) if fired => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(RemoteError::Unreachable {
                    name: self.name.clone(),
                    why: format!("no answer within {}", secs_text(timeout)),
                });
            }
            Ok(None) => {
                let _ = self.child.wait();
                let why = last_line(&self.stderr_text());
                return Err(self.protocol_error(format!("the proxy ended early ({why})")));
            }
            Err(e) => return Err(self.lost(&e)),
        };
        drop(self.stdin);
        // The answer is in: ssh's own exit (a few milliseconds) is
        // waited for on a thread, not by the caller.
        let mut child = self.child;
        std::thread::spawn(move || child.wait());
        refused(&self.name, reply)
    }

    fn stderr_text(&mut self) -> String {
        std::mem::replace(&mut self.stderr, Collected(None)).text()
    }

    /// Runs `tandem ARGS` on the remote at `at`: its stdout is copied to
    /// `out` as it comes, each chunk of its stderr given to `on_stderr`.
    /// Answers its exit code (`None`: it was killed). No timeout: a
    /// command may run as long as it needs (`logs -f`).
    ///
    /// # Errors
    /// [`RemoteError::Unreachable`] when the link breaks;
    /// [`RemoteError::Refused`] when the proxy cannot run it (no such
    /// session there).
    pub fn run(
        mut self,
        args: Vec<String>,
        at: RunAt,
        env_files: Vec<Vec<u8>>,
        out: &mut dyn Write,
        on_stderr: &mut dyn FnMut(&str),
    ) -> Result<Option<i32>, RemoteError> {
        let request = RemoteRequest::Run { args, at, env_files };
        // On a failed write, the proxy's answer (an error) may still be
        // there to read: the loop below reads it, or finds the link gone.
        let _ = protocol::send(&mut self.stdin, &request);
        loop {
            match protocol::read_frame(&mut self.stdout) {
                Ok(Some((protocol::KIND_DATA, bytes))) => {
                    if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        return Ok(None);
                    }
                }
                Ok(Some((_, payload))) => match serde_json::from_slice::<RemoteReply>(&payload) {
                    Ok(RemoteReply::Stderr { text }) => on_stderr(&text),
                    Ok(RemoteReply::Exit { code }) => {
                        drop(self.stdin);
                        let _ = self.child.wait();
                        return Ok(code);
                    }
                    Ok(other) => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        return refused(&self.name, other)
                            .and_then(|_| Err(self.protocol_error("a reply out of place")));
                    }
                    Err(e) => return Err(self.protocol_error(e.to_string())),
                },
                Ok(None) => {
                    let _ = self.child.wait();
                    let why = last_line(&self.stderr_text());
                    return Err(RemoteError::Unreachable {
                        name: self.name.clone(),
                        why: format!("the link closed before the command ended ({why})"),
                    });
                }
                Err(e) => return Err(self.lost(&e)),
            }
        }
    }

    /// Attaches to session `name` at `rows` × `cols`: after the proxy's
    /// [`RemoteReply::Attached`], the returned reader and writer carry the
    /// host's attach stream; the [`Child`] is the `ssh` process (kill it
    /// to end the attach).
    ///
    /// # Errors
    /// As [`Channel::ask`].
    pub fn attach(
        mut self,
        name: &str,
        rows: u16,
        cols: u16,
    ) -> Result<(BufReader<LinkReader>, ChildStdin, Child), RemoteError> {
        let request = RemoteRequest::Attach { name: name.to_owned(), rows, cols };
        let watchdog = Watchdog::start(&self.child, self.timeout);
        self.stdout.get_mut().give_up_after(Some(self.timeout));
        let sent = protocol::send(&mut self.stdin, &request);
        let reply = match protocol::recv(&mut self.stdout) {
            Ok(None) => sent.map(|()| None),
            other => other,
        };
        self.stdout.get_mut().give_up_after(None);
        let mut fired = watchdog.disarm();
        if let Err(e) = &reply {
            fired = timed_out(e, fired);
        }
        match reply {
            Ok(Some(RemoteReply::Attached { .. })) => Ok((self.stdout, self.stdin, self.child)),
            Ok(Some(other)) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                refused(&self.name, other).and_then(|_| Err(self.protocol_error("a reply out of place")))
            }
            Ok(None) => Err(self.protocol_error("the proxy ended early")),
            Err(_) if fired => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(RemoteError::Unreachable {
                    name: self.name.clone(),
                    why: format!("no answer within {}", secs_text(self.timeout)),
                })
            }
            Err(e) => Err(self.lost(&e)),
        }
    }
}

fn refused(name: &str, reply: RemoteReply) -> Result<RemoteReply, RemoteError> {
    match reply {
        RemoteReply::Error { message, hint } => Err(RemoteError::Refused { name: name.to_owned(), message, hint }),
        reply => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_and_refuse_options() {
        assert_eq!(parse_destination("me@box").expect("plain"), ("me@box".into(), None));
        assert_eq!(parse_destination("ssh://me@box:2222").expect("url"), ("me@box".into(), Some(2222)));
        assert_eq!(parse_destination("ssh://box/").expect("url"), ("box".into(), None));
        for bad in ["", "-oProxyCommand=x", "a b", "ssh://box:0", "ssh://box:x", "ssh://box/path", "ssh://-x", "me@"] {
            assert!(parse_destination(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
