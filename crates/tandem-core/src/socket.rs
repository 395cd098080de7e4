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
