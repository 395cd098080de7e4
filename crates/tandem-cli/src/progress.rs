//! A spinner on stderr for work that can take a while (fetching a base,
//! writing an archive's summary, making trials, opening a pull request,
//! syncing): it says what is being waited for and for how long, so a slow
//! step is never silence. Only when stderr is a terminal, and only after
//! [`DELAY`] (quick work shows nothing); the line is cleared when the
//! work ends, before anything else is printed.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long work runs before the spinner shows.
pub const DELAY: Duration = Duration::from_millis(400);

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Runs `work` with a spinner saying `what` (e.g. `creating the session:
/// fetching the base`) on stderr, when stderr is a terminal.
pub fn during<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let spinner = Spinner::start(what);
    let result = work();
    drop(spinner);
    result
}

/// A spinner line on stderr, cleared when dropped.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// Starts it (a no-op when stderr is not a terminal).
    #[must_use]
    pub fn start(what: &str) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Spinner { stop, thread: None };
        }
        let what = tandem_core::text::visible(what).into_owned();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut shown = false;
            let mut frame = 0;
            while !flag.load(Ordering::SeqCst) {
                let elapsed = started.elapsed();
                if elapsed >= DELAY {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{} {what}… {}s", FRAMES[frame % FRAMES.len()], elapsed.as_secs());
                    let _ = err.flush();
                    shown = true;
                    frame += 1;
                }
                std::thread::park_timeout(Duration::from_millis(100));
            }
            if shown {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
        });
        Spinner { stop, thread: Some(thread) }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
