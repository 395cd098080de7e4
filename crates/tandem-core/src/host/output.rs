//! Where the agent's output goes: the screen (`vt100`), the raw log and
//! every client that takes output ([`pump_output`] for a terminal agent;
//! [`show`] for what the host writes itself); a client that falls
//! [`CLIENT_QUEUE`](super::CLIENT_QUEUE) frames behind is dropped
//! ([`broadcast`]).

use std::io::{self, Read};
use std::sync::mpsc::TrySendError;
use std::time::Instant;

use super::{Out, Shared, lock};

pub(super) fn pump_output(shared: &Shared, mut reader: Box<dyn Read + Send>) {
    // A PTY's master gives ~10 KiB a read at most even when far behind
    // (measured on Linux 6.1): a larger buffer would only be memory every
    // idle host keeps (issue 23, target 3).
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break, // EIO: every slave fd is closed
        };
        let bytes = &buf[..n];
        let mut screen = lock(&shared.screen);
        *lock(&shared.last_output) = Some(Instant::now());
        screen.0.process(bytes);
        if let Err(e) = screen.1.write(bytes) {
            tracing::warn!(error = %e, "cannot write the PTY log");
        }
        broadcast(shared, true, || Out::Data(bytes.to_vec()));
    }
}

/// Puts `text` on the host's screen, its log and attached clients, as if
/// the agent had written it.
pub(super) fn show(shared: &Shared, text: &str) {
    let bytes = text.as_bytes();
    let mut screen = lock(&shared.screen);
    screen.0.process(bytes);
    if let Err(e) = screen.1.write(bytes) {
        tracing::warn!(error = %e, "cannot write the PTY log");
    }
    broadcast(shared, true, || Out::Data(bytes.to_vec()));
}

/// Queues `make()` for every client (only those that take output when
/// `output`); drops clients that fell [`CLIENT_QUEUE`](super::CLIENT_QUEUE) frames behind.
pub(super) fn broadcast(shared: &Shared, output: bool, make: impl Fn() -> Out) {
    lock(&shared.clients).retain(|c| {
        if output && !c.output {
            return true;
        }
        match c.tx.try_send(make()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!(client = c.id, "client fell behind; dropping it");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    });
}
