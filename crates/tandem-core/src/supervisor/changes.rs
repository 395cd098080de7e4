//! Telling views that something changed
//! ([`Request::Changes`](crate::protocol::Request::Changes)): a thread
//! counts changes (store commits, file events in watched worktrees and
//! refs; [`watch_changes`]) and a request waits for the count to pass
//! the one it saw ([`wait`]).

use std::thread;
use std::time::Duration;

use crate::protocol::{self, Response};
use crate::session::SessionError;
use crate::store::Store;

use super::{State, database_lost, stop_on_lost_database};

/// Answers [`Request::Changes`](crate::protocol::Request::Changes): the change count once it is past
/// `generation`, or as it is after [`protocol::CHANGES_WAIT`].
pub(super) fn wait(state: &State, generation: u64) -> Result<Response, SessionError> {
    let (count, cvar) = &state.changes;
    let count = count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (count, _) = cvar
        .wait_timeout_while(count, protocol::CHANGES_WAIT, |now| *now <= generation)
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(Response::Changed { generation: *count })
}

/// How often [`watch_changes`] looks.
const CHANGES_EVERY: Duration = Duration::from_millis(100);

/// Counts changes for [`Request::Changes`](crate::protocol::Request::Changes): a commit to the store by
/// anyone (SQLite's `data_version`: hosts, hooks and commands write it
/// directly) and file events in watched worktrees and refs. Both looks
/// cost a syscall or two; nothing runs git.
pub(super) fn watch_changes(state: &State) {
    // Its own connection: `data_version` compares on one connection only.
    let store = Store::open(&state.paths.database()).ok();
    let mut last = None;
    loop {
        thread::sleep(CHANGES_EVERY);
        if crate::store::file_identity(&state.paths.database()) != state.database {
            database_lost(state);
            stop_on_lost_database(state);
        }
        let version = store.as_ref().and_then(|s| s.data_version().ok());
        let stored = version.is_some() && version != last;
        last = version.or(last);
        if stored | state.facts.changed() {
            let (count, cvar) = &state.changes;
            *count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
            cvar.notify_all();
        }
    }
}
