//! Unix sockets between the CLI, the supervisor and hosts: binding in the
//! private runtime directory, checking every peer's uid, and capping what
//! connections may cost a server ([`Gate`]).

use std::collections::VecDeque;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections one server (the supervisor, a host, one `allow_net`
/// forward) serves at once; each costs a thread or two. Issue 16: 300
/// stalled connections made 305 supervisor threads.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a new connection may take to send its hello before it is
/// closed.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Admits a server's connections up to a cap. A connection that has not
/// sent its hello yet is the first to go: when the cap is reached, the
/// oldest of those is closed to make room, so idle connections cannot
/// lock real clients out (a real client sends its hello at once); with
/// none of those, the new connection is refused.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    max: usize,
    state: Mutex<GateState>,
    /// Passes not yet dropped: each is a thread still serving (or
    /// leaving) its connection, an evicted one included.
    live: AtomicUsize,
}

/// How long [`Gate::admit`] waits for an evicted connection's thread to
/// let go of its pass.
const EVICTION_WAIT: Duration = Duration::from_millis(250);

#[derive(Default)]
struct GateState {
    open: usize,
    /// Connections still owing their hello, oldest first.
    waiting: VecDeque<(Arc<AtomicBool>, UnixStream)>,
}

/// One admitted connection's slot, given back when dropped.
pub struct Pass {
    gate: Arc<GateInner>,
    /// Set once the slot is given back (by the drop, or by an eviction).
    released: Arc<AtomicBool>,
}

impl Gate {
    /// A gate for at most `max` connections at once.
    #[must_use]
    pub fn new(max: usize) -> Gate {
        Gate { inner: Arc::new(GateInner { max, state: Mutex::new(GateState::default()), live: AtomicUsize::new(0) }) }
    }

    /// A slot for a new connection, or `None` (close it) when `max` are
    /// open and none of them still owes its hello.
    ///
    /// After closing one to make room it waits (at most 250 ms) until that
    /// connection's thread has let go of its pass, so a flood of
    /// connections never holds more than `max` serving threads at once
    /// (issue 17: 300 idle connections briefly made 79 threads with a cap
    /// of 64, the closed ones still leaving).
    #[must_use]
    pub fn admit(&self) -> Option<Pass> {
        let evicted = {
            let mut state = self.inner.lock();
            if state.open >= self.inner.max {
                let (released, stream) = state.waiting.pop_front()?;
                released.store(true, Ordering::SeqCst);
                state.open -= 1;
                let _ = stream.shutdown(std::net::Shutdown::Both);
                tracing::debug!("closed a connection that had not said hello, to make room");
                true
            } else {
                false
            }
        };
        if evicted {
            let start = std::time::Instant::now();
            while self.inner.live.load(Ordering::SeqCst) >= self.inner.max && start.elapsed() < EVICTION_WAIT {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.inner.lock().open += 1;
        self.inner.live.fetch_add(1, Ordering::SeqCst);
        Some(Pass { gate: Arc::clone(&self.inner), released: Arc::new(AtomicBool::new(false)) })
    }

    /// Connections open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.inner.lock().open
    }
}

impl GateInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Pass {
    /// Marks `stream` as owing its hello: it may be closed to make room,
    /// and reads on it time out after [`HELLO_TIMEOUT`].
    ///
    /// # Errors
    /// I/O errors setting the timeout or cloning the stream.
    pub fn await_hello(&self, stream: &UnixStream) -> io::Result<()> {
        stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
        let clone = stream.try_clone()?;
        self.gate.lock().waiting.push_back((Arc::clone(&self.released), clone));
        Ok(())
    }

    /// Marks `stream` as greeted: it stays however long it is quiet.
    ///
    /// # Errors
    /// I/O errors clearing the timeout.
    pub fn greeted(&self, stream: &UnixStream) -> io::Result<()> {
        self.gate.lock().waiting.retain(|(r, _)| !Arc::ptr_eq(r, &self.released));
        stream.set_read_timeout(None)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.waiting.retain(|(r, _)| !Arc::ptr_eq(r, &self.released));
        if !self.released.swap(true, Ordering::SeqCst) {
            state.open -= 1;
        }
        self.gate.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Binds a listening socket at `path`, replacing a stale socket file left
/// by a dead process. The caller makes sure no live server owns it.
///
/// # Errors
/// I/O errors.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

/// The inode of the socket file at `path` (0 when there is none), to
/// tell later whether the file is still the one bound.
#[must_use]
pub fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).map_or(0, |m| m.ino())
}

/// Removes the socket file at `path` only if it is still the one with
/// inode `ino`: a successor may have bound the same path since (a host
/// replaced by `tandem respawn` while it was still flushing).
pub fn remove_if_ours(path: &Path, ino: u64) {
    if ino != 0 && inode(path) == ino {
        let _ = std::fs::remove_file(path);
    }
}

/// Refuses a peer whose uid is not ours (`SO_PEERCRED`).
///
/// # Errors
/// `PermissionDenied` for another user; I/O errors from the query.
pub fn check_peer(stream: &UnixStream) -> io::Result<()> {
    let creds =
        nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials).map_err(io::Error::from)?;
    if creds.uid() == nix::unistd::getuid().as_raw() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("peer uid {} is not ours", creds.uid())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_refuses_past_its_cap_but_makes_room_by_closing_who_never_said_hello() {
        let gate = Gate::new(2);
        let (a, mut a_peer) = UnixStream::pair().expect("pair");
        let first = gate.admit().expect("room");
        first.await_hello(&a).expect("wait");
        let second = gate.admit().expect("room");
        let (b, _b_peer) = UnixStream::pair().expect("pair");
        second.greeted(&b).expect("greeted");
        // Full: the one still owing its hello is closed for the newcomer.
        let third = gate.admit().expect("room made");
        assert_eq!(gate.open(), 2);
        let mut buf = [0u8; 1];
        assert_eq!(io::Read::read(&mut a_peer, &mut buf).expect("closed"), 0);
        // Full of greeted connections: refused.
        assert!(gate.admit().is_none());
        drop(first); // its slot was given back when it was closed
        assert!(gate.admit().is_none());
        drop(third);
        assert_eq!(gate.open(), 1);
        assert!(gate.admit().is_some());
        drop(second);
        assert_eq!(gate.open(), 0);
    }
}
