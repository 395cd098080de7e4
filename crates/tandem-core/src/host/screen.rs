//! The host's view of an agent's terminal: a `vt100` emulator fed with
//! every byte the agent writes, and the raw log of those bytes.
//!
//! The emulator gives an attaching client the current screen at once
//! ([`redraw`]) and `tandem logs` its text ([`text`]). The log keeps the
//! raw bytes on disk so the text can be rebuilt after the host is gone
//! ([`replay`]); it is rotated at [`LOG_ROTATE_BYTES`] into one older
//! generation (`pty.log.1`).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Lines of scrollback the host keeps in memory.
pub const SCROLLBACK_LINES: usize = 10_000;
/// Size at which `pty.log` is rotated to `pty.log.1`, in bytes.
pub const LOG_ROTATE_BYTES: u64 = 8 << 20;

/// A terminal emulator of `rows` × `cols` cells (each at least 2: `vt100`
/// panics below that) with [`SCROLLBACK_LINES`] of scrollback, for
/// rebuilding a session's text from its log ([`replay`]).
#[must_use]
pub fn emulator(rows: u16, cols: u16) -> vt100::Parser {
    vt100::Parser::new(rows.max(2), cols.max(2), SCROLLBACK_LINES)
}

/// The emulator a host keeps while its agent runs: the screen only, no
/// scrollback. Attaching redraws the screen; the text of earlier output
/// comes from the log when asked for ([`replay`]), so an idle session
/// holds a screenful of cells, not thousands of lines of them.
#[must_use]
pub fn live_emulator(rows: u16, cols: u16) -> vt100::Parser {
    vt100::Parser::new(rows.max(2), cols.max(2), 0)
}

/// Bytes that draw `screen` on a fresh terminal: alternate screen if the
/// agent uses it, contents with attributes, cursor, and input modes
/// (application cursor and keypad, bracketed paste, mouse reporting).
#[must_use]
pub fn redraw(screen: &vt100::Screen) -> Vec<u8> {
    let mut out = Vec::new();
    if screen.alternate_screen() {
        out.extend_from_slice(b"\x1b[?1049h");
    }
    out.extend_from_slice(b"\x1b[H\x1b[2J");
    out.extend(screen.state_formatted());
    out
}

/// The text of the scrollback and the screen, one line per row, trailing
/// blanks trimmed, ending with a newline unless empty. Leaves the
/// emulator scrolled to the bottom.
#[must_use]
pub fn text(parser: &mut vt100::Parser) -> String {
    let (rows, cols) = parser.screen().size();
    let screen = parser.screen_mut();
    screen.set_scrollback(usize::MAX);
    let mut offset = screen.scrollback();
    let mut lines: Vec<String> = Vec::new();
    // At scrollback offset `o` the first visible row is scrollback line
    // `total - o`; walk down a screenful at a time.
    while offset > 0 {
        screen.set_scrollback(offset);
        let take = offset.min(usize::from(rows));
        lines.extend(screen.rows(0, cols).take(take));
        offset -= take;
    }
    screen.set_scrollback(0);
    lines.extend(screen.rows(0, cols));
    let mut lines: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() { String::new() } else { lines.join("\n") + "\n" }
}

/// The raw PTY log of one session.
pub struct PtyLog {
    path: PathBuf,
    file: File,
    len: u64,
    /// Masks secret values before anything reaches the file, holding
    /// back output that may be the start of one
    /// ([`crate::secrets::mask::Masker`]).
    masker: crate::secrets::mask::Masker,
}

/// The current generation's file name in a session's folder.
pub const PTY_LOG: &str = "pty.log";

impl PtyLog {
    /// `dir/pty.log`, the current generation.
    #[must_use]
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(PTY_LOG)
    }

    /// Opens `dir/pty.log` for appending.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(dir: &Path) -> io::Result<PtyLog> {
        let path = Self::path(dir);
        let file = crate::paths::append_private(&path)?;
        let len = file.metadata()?.len();
        Ok(PtyLog { path, file, len, masker: crate::secrets::mask::Masker::default() })
    }

    /// Masks these secret values ([`crate::secrets::MASK`]) in what
    /// it writes from now on, found in the text a terminal would show
    /// ([`crate::secrets::mask`]).
    pub fn redact_secrets(&mut self, secrets: &[String]) {
        self.masker = crate::secrets::mask::Masker::new(secrets);
    }

    /// Appends `bytes` (secrets masked; a tail that may begin a secret
    /// waits for the next write), rotating first when the file is full.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.masker.is_empty() {
            return self.write_raw(bytes);
        }
        let out = self.masker.push(bytes);
        self.write_raw(&out)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.len + bytes.len() as u64 > LOG_ROTATE_BYTES {
            fs::rename(&self.path, self.path.with_extension("log.1"))?;
            self.file = crate::paths::append_private(&self.path)?;
            self.len = 0;
        }
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

/// Rebuilds the emulator of a session whose host is gone from its logs
/// in `dir` (older generation first), at `rows` × `cols`.
///
/// # Errors
/// I/O errors other than a missing file.
pub fn replay(dir: &Path, rows: u16, cols: u16) -> io::Result<vt100::Parser> {
    let mut parser = emulator(rows, cols);
    let current = PtyLog::path(dir);
    for path in [current.with_extension("log.1"), current] {
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => f.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        parser.process(&bytes);
    }
    Ok(parser)
}

/// Records the terminal size (`rows cols`) beside the log, so [`replay`]
/// can use it after the host is gone.
///
/// # Errors
/// I/O errors.
pub fn write_size(dir: &Path, rows: u16, cols: u16) -> io::Result<()> {
    crate::paths::write_private(&dir.join("pty.size"), format!("{rows} {cols}\n").as_bytes())
}

/// The size last written by [`write_size`], else 24 × 80.
#[must_use]
pub fn read_size(dir: &Path) -> (u16, u16) {
    fs::read_to_string(dir.join("pty.size"))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(str::parse::<u16>);
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .unwrap_or((24, 80))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_includes_scrollback_then_screen() {
        let mut parser = emulator(3, 20);
        for i in 1..=10 {
            parser.process(format!("line {i}\r\n").as_bytes());
        }
        parser.process(b"prompt$ ");
        let text = text(&mut parser);
        let expected: String = (1..=10).map(|i| format!("line {i}\n")).collect::<String>() + "prompt$\n";
        assert_eq!(text, expected);
        assert_eq!(parser.screen().scrollback(), 0);
    }

    #[test]
    fn redraw_reproduces_the_screen() {
        let mut agent = emulator(5, 30);
        agent.process(b"\x1b[?1049h\x1b[2;3H\x1b[1mbold\x1b[0m plain\x1b[?2004h");
        let mut viewer = emulator(5, 30);
        viewer.process(&redraw(agent.screen()));
        assert_eq!(viewer.screen().contents(), agent.screen().contents());
        assert!(viewer.screen().alternate_screen());
        assert!(viewer.screen().bracketed_paste());
        assert_eq!(viewer.screen().cursor_position(), agent.screen().cursor_position());
    }

    #[test]
    fn log_rotates_and_replays_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = PtyLog::open(dir.path()).expect("open");
        log.write(b"first\r\n").expect("write");
        log.len = LOG_ROTATE_BYTES; // pretend it is full
        log.write(b"second\r\n").expect("write");
        assert!(dir.path().join("pty.log.1").exists());
        let mut parser = replay(dir.path(), 24, 80).expect("replay");
        assert_eq!(text(&mut parser), "first\nsecond\n");
        write_size(dir.path(), 30, 100).expect("size");
        assert_eq!(read_size(dir.path()), (30, 100));
    }
}
