//! What the agent view shows of the selected session besides its row: its
//! screen, rebuilt from the PTY log when the log grows (the last 256 KiB,
//! replayed into an emulator of the agent's own terminal size), and its
//! last 20 history events, read again from the store when the selection
//! moves or the rows were reloaded. A library, so `tandem-bench view`
//! times the frame the view really draws.

use std::io;
use std::path::Path;

use tandem_core::host::screen::{self, PtyLog};
use tandem_core::paths::Paths;
use tandem_core::store::Store;

/// The selected session's screen and history.
#[derive(Default)]
pub struct Selected {
    preview: Preview,
    history: Vec<(String, String)>,
    /// The session `history` is of; `None` until read (and after rows were
    /// reloaded).
    history_of: Option<String>,
    /// The store, opened on first use and kept: one SQLite open per
    /// history read would cost more than the read.
    store: Option<Store>,
}

impl Selected {
    /// Events of history shown.
    pub const HISTORY: usize = 20;

    /// Brings the screen and history up to date for session `id` (`None`:
    /// nothing selected). `reloaded`: the rows were just read again, so the
    /// history is too. A store that cannot be opened or read shows no
    /// history (and is opened again next time).
    pub fn update(&mut self, paths: &Paths, id: Option<&str>, reloaded: bool) {
        if reloaded || self.history_of.as_deref() != id {
            self.history = id.and_then(|id| self.read_history(paths, id)).unwrap_or_default();
            self.history_of = id.map(str::to_owned);
        }
        self.preview.update(paths, id);
    }

    fn read_history(&mut self, paths: &Paths, id: &str) -> Option<Vec<(String, String)>> {
        if self.store.is_none() {
            paths.ensure_state_dir().ok()?;
            self.store = Store::open(&paths.database()).ok();
        }
        match self.store.as_ref()?.recent_events(id, Self::HISTORY) {
            Ok(events) => Some(events.into_iter().map(|e| (e.kind.as_str().to_owned(), e.text)).collect()),
            Err(_) => {
                self.store = None;
                None
            }
        }
    }

    /// The selected session's screen, if it has a PTY log.
    #[must_use]
    pub fn screen(&self) -> Option<&vt100::Screen> {
        self.preview.parser.as_ref().map(vt100::Parser::screen)
    }

    /// The selected session's last history events, oldest first:
    /// `(kind, text)`.
    #[must_use]
    pub fn history(&self) -> &[(String, String)] {
        &self.history
    }
}

/// The selected session's screen, rebuilt from its PTY log when the log
/// grows.
#[derive(Default)]
struct Preview {
    session: Option<String>,
    log_len: u64,
    parser: Option<vt100::Parser>,
}

impl Preview {
    /// How much of the log's end is replayed.
    const TAIL: u64 = 256 * 1024;

    fn update(&mut self, paths: &Paths, session: Option<&str>) {
        let Some(id) = session else {
            *self = Preview::default();
            return;
        };
        let dir = paths.session_dir(id);
        let len = std::fs::metadata(PtyLog::path(&dir)).map_or(0, |m| m.len());
        if self.session.as_deref() == Some(id) && len == self.log_len {
            return;
        }
        let (rows, cols) = screen::read_size(&dir);
        let mut parser = vt100::Parser::new(rows.max(2), cols.max(2), 0);
        if let Ok(bytes) = read_tail(&PtyLog::path(&dir), Self::TAIL) {
            parser.process(&bytes);
        }
        *self = Preview { session: Some(id.to_owned()), log_len: len, parser: Some(parser) };
    }
}

fn read_tail(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
