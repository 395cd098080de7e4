//! The host template: one single-threaded `tandem-host template` process
//! per supervisor that forks each new host (issue 23, target 3).
//!
//! A host started with `exec` loads and relocates its own copy of the
//! position-independent `tandem-host` binary: 288 KiB of relocated
//! read-only data, plus the C libraries' own, private to every host. A
//! host forked from one process that did that once shares those pages
//! with every other host (they are never written after relocation), as
//! it shares what the template allocated before the fork. The same idea
//! as Android's and Chromium's zygote.
//!
//! - The supervisor starts the template on the first host it starts
//!   ([`crate::session::launch`]), with one end of a Unix socket pair as
//!   its stdin, and the template serves until that socket closes (the
//!   supervisor exited, or crashed): a template never outlives its
//!   supervisor, so an upgrade replaces both.
//! - The template first writes [`HELLO`]: a `tandem-host` of a release
//!   before templates takes the argument for nothing and waits for a
//!   spec, and the supervisor, which waits at most 5 s for the hello (and
//!   for each answer), starts hosts itself then.
//! - A request is one byte carrying three file descriptors
//!   (`SCM_RIGHTS`, `unix(7)`): the new host's stdin, stdout and stderr.
//!   The template forks the host, which starts a session of its own
//!   (`setsid`, as every host does). The template ignores `SIGCHLD`, so
//!   the kernel reaps each host as it exits (no zombie, no thread of the
//!   supervisor's waiting on it, as there was per host); the host puts
//!   `SIGCHLD` back to its default before anything else. A host never
//!   depends on the template: killing the template leaves every host
//!   running (init adopts them), and the supervisor starts a new template
//!   for the next host, or starts hosts itself (`exec`) when it cannot.
//! - The answer is four bytes, a little-endian `i32`: 0 once the host is
//!   forked, or minus the `errno` of the fork that failed (or `EINVAL`
//!   for a request without three descriptors). A host whose `dup2` fails
//!   exits 127 at once; the supervisor then gets no report.
//! - The host then runs the code of one started by `exec` ([`super::main`]),
//!   its stdin, stdout and stderr the three descriptors; its environment,
//!   working folder and limits are the template's, so the supervisor's
//!   when the template started.
//!
//! What is given up: every host forked by one template has that
//! template's address-space layout, stack-protector canary and glibc
//! pointer guard (randomised once per supervisor start, not per host), as
//! every zygote's children do. The agent itself is started with `exec`
//! and gets fresh ones.

use std::io::{self, IoSlice, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout};

/// The argument that makes `tandem-host` a template.
pub const TEMPLATE_ARG: &str = "template";

/// What a template writes first on its socket: a name and the version of
/// this request protocol.
pub const HELLO: [u8; 8] = *b"tdmtpl01";

/// Waits for a template's [`HELLO`] on `socket` (within the socket's read
/// timeout).
///
/// # Errors
/// The socket's errors (`WouldBlock`/`TimedOut` past its timeout, an
/// early end), or `InvalidData` for another hello.
pub fn hello(socket: &UnixStream) -> io::Result<()> {
    let mut said = [0u8; HELLO.len()];
    let mut socket = socket;
    socket.read_exact(&mut said)?;
    if said == HELLO { Ok(()) } else { Err(io::Error::new(io::ErrorKind::InvalidData, "not a host template's hello")) }
}

/// Serves fork requests on the socket that is this process's stdin until
/// it closes. Each request forks a host that runs `host()` with the
/// request's three descriptors as its stdin (which closes the host's copy
/// of the socket), stdout and stderr, and exits with what it returns.
///
/// # Errors
/// When the process has more than one thread (a fork would copy only
/// the caller's), or the socket fails other than by its end.
pub fn serve(host: impl Fn() -> i32) -> io::Result<()> {
    if thread_count() != Some(1) {
        return Err(io::Error::other("the host template must be single-threaded to fork"));
    }
    reap_children_automatically()?;
    // What starting took goes back: each host would otherwise copy the
    // pages it falls on as it allocates there.
    crate::process::release_free_memory();
    let stdin = io::stdin();
    let socket = stdin.as_fd();
    write_all(socket, &HELLO)?;
    loop {
        let Some(fds) = receive(socket)? else { return Ok(()) };
        let answer = match fds {
            Ok(fds) => fork_host(fds, &host),
            Err(errno) => -errno,
        };
        write_all(socket, &answer.to_le_bytes())?;
    }
}

/// Writes all of `bytes` to `socket`.
fn write_all(socket: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    let mut sent = 0;
    while sent < bytes.len() {
        match nix::unistd::write(socket, &bytes[sent..]) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Asks the template behind `socket` to fork a host with `stdio` as its
/// stdin, stdout and stderr, and waits until it has.
///
/// # Errors
/// The socket's errors (the template is gone: `EPIPE`, `ECONNRESET`, or
/// an early end; silent past the socket's timeouts), or the template's
/// fork error.
pub fn request(socket: &UnixStream, stdio: [BorrowedFd<'_>; 3]) -> io::Result<()> {
    let raw: [RawFd; 3] = stdio.map(|fd| fd.as_raw_fd());
    let fds = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(&[1])], &fds, MsgFlags::MSG_NOSIGNAL, None)?;
    let mut answer = [0u8; 4];
    let mut socket = socket;
    socket.read_exact(&mut answer)?;
    match i32::from_le_bytes(answer) {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(-errno)),
    }
}

/// The next request's descriptors; `None` when the socket has closed,
/// `Some(Err(errno))` for a request without exactly three.
fn receive(socket: BorrowedFd<'_>) -> io::Result<Option<Result<[OwnedFd; 3], i32>>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let msg = loop {
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => {}
            other => break other?,
        }
    };
    if msg.bytes == 0 {
        return Ok(None);
    }
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            fds.extend(raw.into_iter().map(owned));
        }
    }
    Ok(Some(<[OwnedFd; 3]>::try_from(fds).map_err(|_| libc::EINVAL)))
}

/// Takes ownership of a descriptor the kernel just installed for this
/// process (`SCM_RIGHTS`).
#[allow(unsafe_code)] // OwnedFd::from_raw_fd has no safe form for received descriptors
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `recvmsg` installed `fd` in this process for this message
    // alone; nothing else holds or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Forks the host (see the module): returns 0 once it is forked, or minus
/// an `errno`. Never returns in the host.
#[allow(unsafe_code)] // fork(2) and signal(2), which nix marks unsafe
fn fork_host(stdio: [OwnedFd; 3], host: &impl Fn() -> i32) -> i32 {
    // SAFETY: the template is single-threaded (checked in `serve`), so
    // the child's copy of every lock and allocator state is consistent.
    match unsafe { nix::unistd::fork() } {
        Err(e) => -(e as i32),
        Ok(ForkResult::Parent { .. }) => 0,
        Ok(ForkResult::Child) => {
            // The template lets the kernel reap its hosts; a host waits for
            // its agent, and the agent must not inherit an ignored SIGCHLD.
            // SAFETY: the default disposition runs no code of ours.
            let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
            std::process::exit(become_host(stdio, host))
        }
    }
}

/// Makes the kernel reap the template's children (its hosts) as they
/// exit, so none lingers as a zombie while the template lives
/// (`sigaction(2)`: `SIGCHLD` set to `SIG_IGN`).
#[allow(unsafe_code)] // signal(2), which nix marks unsafe
fn reap_children_automatically() -> io::Result<()> {
    // SAFETY: ignoring a signal runs no code of ours.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }?;
    Ok(())
}

/// In the forked host: the three descriptors become its stdin, stdout and
/// stderr (`dup2` clears their close-on-exec), then it runs.
fn become_host(stdio: [OwnedFd; 3], host: &impl Fn() -> i32) -> i32 {
    let [stdin, stdout, stderr] = stdio;
    if dup2_stdin(stdin.as_fd())
        .and_then(|()| dup2_stdout(stdout.as_fd()))
        .and_then(|()| dup2_stderr(stderr.as_fd()))
        .is_err()
    {
        return 127;
    }
    drop((stdin, stdout, stderr));
    host()
}

/// How many threads this process has (`/proc/self/task`).
pub(super) fn thread_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}
