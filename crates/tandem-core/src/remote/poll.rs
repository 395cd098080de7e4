//! Remote rows for the front ends that stay open (the agent view, the
//! dashboard): a background thread asks every remote host for its rows
//! ([`super::remote_rows`]) every few seconds, and sooner when poked
//! (the local rows changed), and keeps the last answer. A redraw reads
//! [`Poller::latest`], which never waits on a host: a slow host only
//! makes its rows older, and one that does not answer shows its last
//! known rows as `unreachable`.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::paths::Paths;
use crate::rows::SessionRow;

/// How often hosts are asked with nothing changed locally.
pub const EVERY: Duration = Duration::from_secs(5);

/// The least time between two rounds of asking, however often the
/// poller is poked.
pub const MIN_GAP: Duration = Duration::from_secs(2);

/// The hosts' rows as last answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latest {
    /// Every remote's rows, marked with its name (`host`); the last
    /// known ones, `unreachable`, for a host that did not answer.
    pub rows: Vec<SessionRow>,
    /// Why each host that did not answer did not (control characters
    /// made visible).
    pub notes: Vec<String>,
    /// How many rounds of asking have ended (0: none yet).
    pub rounds: u64,
}

/// The background asker; its thread ends soon after the poller is
/// dropped (after the round in progress, at most the remote timeout).
pub struct Poller {
    latest: Arc<Mutex<Latest>>,
    wake: Mutex<Sender<()>>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").finish_non_exhaustive()
    }
}

impl Poller {
    /// Starts asking: each round waits at most `timeout` for the hosts
    /// (see [`super::ask_all`]), rounds start every `every` and on each
    /// [`Poller::poke`], but never within [`MIN_GAP`] of the last one.
    /// With no remote added a round reads one folder and asks nobody.
    /// `answered` is called (on the poller's thread) after each round
    /// whose rows or notes differ from the round before.
    pub fn start(
        paths: Paths,
        timeout: Duration,
        every: Duration,
        answered: impl Fn(&Latest) + Send + 'static,
    ) -> Poller {
        let latest = Arc::new(Mutex::new(Latest::default()));
        let (wake, woken) = mpsc::channel::<()>();
        let shared = Arc::clone(&latest);
        let _ = std::thread::Builder::new().name("tandem-remote-rows".into()).spawn(move || {
            loop {
                let began = Instant::now();
                let (rows, notes) = if super::Registry::new(&paths).any() {
                    super::remote_rows(&paths, timeout, false)
                } else {
                    (Vec::new(), Vec::new())
                };
                let changed = {
                    let mut latest = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    let changed = latest.rows != rows || latest.notes != notes || latest.rounds == 0;
                    latest.rows = rows;
                    latest.notes = notes;
                    latest.rounds += 1;
                    changed.then(|| latest.clone())
                };
                if let Some(latest) = changed {
                    answered(&latest);
                }
                match woken.recv_timeout(every) {
                    Ok(()) => {
                        while woken.try_recv().is_ok() {}
                        std::thread::sleep(MIN_GAP.saturating_sub(began.elapsed()));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Poller { latest, wake: Mutex::new(wake) }
    }

    /// The rows of the last round (none before the first ends).
    #[must_use]
    pub fn latest(&self) -> Latest {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Asks for a round soon (the local rows changed); returns at once.
    pub fn poke(&self) {
        let _ = self.wake.lock().unwrap_or_else(PoisonError::into_inner).send(());
    }
}
