//! What the agent view shows of the selected session besides its row: its
//! screen (the last 256 KiB of its PTY log replayed into an emulator of
//! the agent's own terminal size, then fed what the log grows by; the
//! screens of the rows the selection is likely to reach next are built
//! ahead on a thread), and its last 20 history events, read again from
//! the store when the selection moves or the rows were reloaded. A
//! library, so `tandem-bench view` times the frame the view really
//! draws.

use std::io;
use std::os::unix::fs::MetadataExt;

use tandem_core::host::screen::{self, PtyLog};
use tandem_core::paths::Paths;
use tandem_core::store::Store;

/// The selected session's screen and history.
#[derive(Default)]
pub struct Selected {
    preview: Preview,
    /// Screens built ahead on a thread of their own ([`Selected::prefetch`]).
    ahead: Option<Ahead>,
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
        // A screen built ahead for it, brought up to date below like the
        // current one (only what its log grew by since).
        if let (Some(id), Some(ahead)) = (id, &self.ahead)
            && self.preview.session.as_deref() != Some(id)
        {
            // The screen left is kept among them: moving back is free.
            let left = std::mem::take(&mut self.preview);
            if let Some(built) = ahead.take(id) {
                self.preview = built;
            }
            ahead.keep(left);
        }
        self.preview.update(paths, id);
    }

    /// Builds the screens of sessions `ids` (the rows the selection is
    /// likely to reach next, [`crate::view::model::App::ahead`]) on a
    /// thread of its own, so moving there replays no log on the frame;
    /// the [`Ahead::KEEP`] newest are kept. A session already built or
    /// shown is skipped.
    pub fn prefetch(&mut self, paths: &Paths, ids: &[String]) {
        if self.ahead.as_ref().is_some_and(|a| a.last == ids) {
            return;
        }
        let current = self.preview.session.clone();
        let ahead = self.ahead.get_or_insert_with(|| Ahead::start(paths.clone()));
        for id in ids.iter().filter(|id| current.as_ref() != Some(*id)) {
            ahead.ask(id);
        }
        ahead.last = ids.to_vec();
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

    /// The selected session's screen (empty when it has no PTY log);
    /// `None` when nothing is selected.
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

/// The selected session's screen, rebuilt from its PTY log when another
/// session is selected; while the same one stays selected, only what
/// its log grew by is fed to the emulator (a printing agent's log grows
/// between most frames, and replaying 256 KiB each time cost ~2 ms a
/// frame).
#[derive(Default)]
struct Preview {
    session: Option<String>,
    /// The log replayed so far, kept open (so its inode cannot be given
    /// to another file while it is compared), how many of its bytes were
    /// replayed, and the terminal size they were replayed at.
    log: Option<(std::fs::File, u64, (u16, u16))>,
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
        let path = PtyLog::path(&dir);
        let now = std::fs::metadata(&path).ok().map(|m| ((m.dev(), m.ino()), m.len()));
        let size = screen::read_size(&dir);
        if self.session.as_deref() == Some(id)
            && let (Some((file, done, was_size)), Some((identity, len))) = (self.log.as_mut(), now)
            && *was_size == size
            && file.metadata().is_ok_and(|m| (m.dev(), m.ino()) == identity)
        {
            // The same file at the same size: nothing new, or only what
            // it grew by (a rotation makes another file; a resize, or a
            // file cut short, replays anew).
            if len == *done {
                return;
            }
            if len > *done
                && len - *done <= Self::TAIL
                && let (Some(parser), Ok(bytes)) = (self.parser.as_mut(), read_from(file, *done, len))
            {
                parser.process(&bytes);
                *done = len;
                return;
            }
        }
        let (rows, cols) = size;
        let mut parser = vt100::Parser::new(rows.max(2), cols.max(2), 0);
        let log = std::fs::File::open(&path).ok().map(|mut file| {
            let len = file.metadata().map_or(0, |m| m.len());
            if let Ok(bytes) = read_from(&mut file, len.saturating_sub(Self::TAIL), len) {
                parser.process(&bytes);
            }
            (file, len, size)
        });
        *self = Preview { session: Some(id.to_owned()), log, parser: Some(parser) };
    }
}

/// The thread that builds screens ahead, and what it built.
struct Ahead {
    asks: std::sync::mpsc::Sender<String>,
    built: std::sync::Arc<std::sync::Mutex<Vec<Preview>>>,
    /// The ids asked for last (the same again asks nothing).
    last: Vec<String>,
}

impl Ahead {
    /// Screens kept (each a screenful of cells and an open log).
    const KEEP: usize = 4;

    fn start(paths: Paths) -> Ahead {
        let (asks, queue) = std::sync::mpsc::channel::<String>();
        let built: std::sync::Arc<std::sync::Mutex<Vec<Preview>>> = std::sync::Arc::default();
        let shared = std::sync::Arc::clone(&built);
        // The view goes on without it if no thread can be made.
        let _ = std::thread::Builder::new().name("screens".into()).spawn(move || {
            while let Ok(first) = queue.recv() {
                // What was asked last matters: older asks are dropped.
                let mut wanted: Vec<String> = std::iter::once(first).chain(queue.try_iter()).collect();
                let skip = wanted.len().saturating_sub(Self::KEEP);
                wanted.drain(..skip);
                for id in wanted {
                    let have = |list: &Vec<Preview>| list.iter().any(|p| p.session.as_deref() == Some(id.as_str()));
                    if have(&lock(&shared)) {
                        continue;
                    }
                    let mut preview = Preview::default();
                    preview.update(&paths, Some(&id));
                    let mut list = lock(&shared);
                    if !have(&list) {
                        list.push(preview);
                        let over = list.len().saturating_sub(Self::KEEP);
                        list.drain(..over);
                    }
                }
            }
        });
        Ahead { asks, built, last: Vec::new() }
    }

    fn ask(&self, id: &str) {
        let _ = self.asks.send(id.to_owned());
    }

    /// Keeps `preview` (a screen the selection left) among the built.
    fn keep(&self, preview: Preview) {
        if preview.session.is_none() {
            return;
        }
        let mut list = lock(&self.built);
        list.retain(|p| p.session != preview.session);
        list.push(preview);
        let over = list.len().saturating_sub(Self::KEEP);
        list.drain(..over);
    }

    /// The screen built for `id`, taken out.
    fn take(&self, id: &str) -> Option<Preview> {
        let mut list = lock(&self.built);
        let at = list.iter().position(|p| p.session.as_deref() == Some(id))?;
        Some(list.remove(at))
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bytes `from..to` of `file` (fewer if it is shorter).
fn read_from(file: &mut std::fs::File, from: u64, to: u64) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(to.saturating_sub(from)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen_text(preview: &Preview) -> String {
        preview.parser.as_ref().expect("a screen").screen().contents()
    }

    #[test]
    fn a_grown_log_is_fed_on_and_another_file_or_size_replayed() {
        let home = tempfile::tempdir().expect("tempdir");
        let paths = Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| home.path().to_path_buf())).expect("paths");
        let dir = paths.session_dir("s1");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let log = PtyLog::path(&dir);
        screen::write_size(&dir, 5, 20).expect("size");
        std::fs::write(&log, "first\r\n").expect("write");
        let mut preview = Preview::default();
        preview.update(&paths, Some("s1"));
        assert!(screen_text(&preview).starts_with("first"));

        // The same file, grown (its start rewritten too, which only a
        // replay from the start would show): only the new bytes are fed.
        std::fs::write(&log, "FIRST\r\nsecond\r\n").expect("rewrite in place");
        preview.update(&paths, Some("s1"));
        assert_eq!(screen_text(&preview).lines().take(2).collect::<Vec<_>>(), ["first", "second"]);

        // Another file (a rotation) is replayed, even one longer than
        // the log was (the open log keeps its inode from being reused).
        std::fs::remove_file(&log).expect("rm");
        std::fs::write(&log, "ROTATED\r\nand a longer line than before\r\n").expect("write");
        preview.update(&paths, Some("s1"));
        assert!(screen_text(&preview).starts_with("ROTATED"), "{}", screen_text(&preview));

        // So is the same file at another terminal size.
        std::fs::write(&log, "RESIZED\r\nmore\r\nand more\r\n").expect("rewrite in place");
        screen::write_size(&dir, 6, 30).expect("size");
        preview.update(&paths, Some("s1"));
        assert!(screen_text(&preview).starts_with("RESIZED"), "{}", screen_text(&preview));
        assert_eq!(preview.parser.as_ref().expect("a screen").screen().size(), (6, 30));

        // Another session is replayed from its own log.
        let other = paths.session_dir("s2");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::write(PtyLog::path(&other), "two\r\n").expect("write");
        preview.update(&paths, Some("s2"));
        assert!(screen_text(&preview).starts_with("two"));
    }

    #[test]
    fn screens_built_ahead_and_left_behind_are_taken_and_fed_on() {
        let home = tempfile::tempdir().expect("tempdir");
        let paths = Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| home.path().to_path_buf())).expect("paths");
        let log = |id: &str| {
            let dir = paths.session_dir(id);
            std::fs::create_dir_all(&dir).expect("mkdir");
            screen::write_size(&dir, 5, 20).expect("size");
            PtyLog::path(&dir)
        };
        std::fs::write(log("one"), "one\r\n").expect("write");
        std::fs::write(log("two"), "two\r\n").expect("write");
        let mut selected = Selected::default();
        selected.update(&paths, Some("one"), false);
        selected.prefetch(&paths, &["two".to_owned()]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while selected.ahead.as_ref().is_none_or(|a| lock(&a.built).is_empty()) {
            assert!(std::time::Instant::now() < deadline, "nothing was built ahead");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Rewritten in place and grown: only a screen built before shows
        // the old first line.
        std::fs::write(log("two"), "TWO\r\nmore\r\n").expect("rewrite");
        selected.update(&paths, Some("two"), false);
        let text = selected.screen().expect("a screen").contents();
        assert_eq!(text.lines().take(2).collect::<Vec<_>>(), ["two", "more"], "{text}");
        // Back to the first: the screen left behind was kept.
        std::fs::write(log("one"), "ONE\r\nagain\r\n").expect("rewrite");
        selected.update(&paths, Some("one"), false);
        let text = selected.screen().expect("a screen").contents();
        assert_eq!(text.lines().take(2).collect::<Vec<_>>(), ["one", "again"], "{text}");
    }
}
