//! A command in a pseudo-terminal, for the keystroke-to-echo figures
//! (`tandem-bench web` and `remote`).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::stats::ms;
use anyhow::{Context, Result};

/// The text of terminal output without its escape sequences (CSI, OSC and
/// two-byte escapes), so a typed letter is not found inside one.
pub(crate) fn printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        i += 1;
        match bytes.get(i) {
            Some(b'[') => {
                i += 1;
                while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                    i += 1;
                }
                i += 1;
            }
            Some(b']') => {
                while i < bytes.len() && bytes[i] != 0x07 && bytes[i] != 0x1b {
                    i += 1;
                }
                i += 1;
            }
            Some(b'(' | b')') => i += 2,
            Some(_) => i += 1,
            None => {}
        }
    }
    out
}

/// A command in a PTY of 40×120; its output read on a thread.
pub(crate) struct Pty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    output: std::sync::mpsc::Receiver<Vec<u8>>,
    writer: Box<dyn Write + Send>,
}

impl Pty {
    pub(crate) fn start(cmd: portable_pty::CommandBuilder) -> Result<Pty> {
        let pty = portable_pty::native_pty_system()
            .openpty(portable_pty::PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 })
            .map_err(|e| anyhow::anyhow!("openpty: {e}"))?;
        let child = pty.slave.spawn_command(cmd).map_err(|e| anyhow::anyhow!("spawn in a PTY: {e}"))?;
        let mut reader = pty.master.try_clone_reader().map_err(|e| anyhow::anyhow!("{e}"))?;
        let writer = pty.master.take_writer().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (tx, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let pty = Pty { child, output, writer };
        // The first screen: read until it is quiet.
        pty.drain(Duration::from_millis(700));
        Ok(pty)
    }

    pub(crate) fn drain(&self, quiet: Duration) {
        while self.output.recv_timeout(quiet).is_ok() {}
    }

    /// Types `key`, waits until it comes back, then erases it (Backspace)
    /// and lets that echo pass; answers the wait in milliseconds.
    pub(crate) fn echo(&mut self, key: u8, what: &str) -> Result<f64> {
        let start = Instant::now();
        self.writer.write_all(&[key])?;
        self.writer.flush()?;
        loop {
            let chunk = self
                .output
                .recv_timeout(Duration::from_secs(10))
                .with_context(|| format!("no echo through {what} within 10 s"))?;
            if printable(&chunk).contains(&key) {
                break;
            }
        }
        let took = ms(start.elapsed());
        self.writer.write_all(&[0x7f])?;
        self.writer.flush()?;
        self.drain(Duration::from_millis(50));
        Ok(took)
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_drops_escape_sequences() {
        assert_eq!(printable(b"\x1b[?25l\x1b[1;31ma\x1b[m\x1b]0;title\x07b\x1b(Bc\x1b=d"), b"abcd");
        assert_eq!(printable(b"plain"), b"plain");
    }
}
