//! Unix sockets between the CLI, the supervisor and hosts: binding in the
//! private runtime directory and checking every peer's uid.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

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
