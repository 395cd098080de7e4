//! The checkpointer (issue 22): a thread that checkpoints every session
//! whose agent ended a turn, off the agent's path (the agent never waits
//! on it).
//!
//! A turn ends:
//! - for an agent that reports its state (Claude Code's hooks or stream,
//!   Codex's `turn/completed`, Gemini's end of prompt): when its activity
//!   enters `idle` or `asking`; a trigger counts it in the session's row
//!   (`turns`), whoever wrote it, so a turn ended while no supervisor ran
//!   is checkpointed when the next one starts;
//! - for any other program (a shell): when its output, after some, has
//!   been quiet for its repository's `supervisor.quiet_secs` (the same
//!   rule that lists it `idle (inferred)`).
//!
//! Before any git runs, a session whose worktree the facts cache saw no
//! change in since its last look (and whose branch did not move) is
//! skipped: a turn that only talked costs nothing.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use crate::checkpoints;
use crate::model::Cause;
use crate::store::{Session, SessionState, Store};

use super::{State, repo_of};

/// How often it looks when nothing wakes it.
const EVERY: Duration = Duration::from_millis(500);

/// How often it looks for turns inferred from quiet output (a `stat` of
/// every running session's PTY log: 200 of them twice a second were most
/// of the idle supervisor's CPU, issue 23). Such a turn ends after
/// `supervisor.quiet_secs` (30 by default) of quiet; this adds at most
/// two seconds to it.
const SCAN_EVERY: Duration = Duration::from_secs(2);

/// How often it mends what a killed command left (a `tandem sync` killed
/// between its checkpoint's row and ref, a temporary index), and how old
/// a row or lock must be to count as left.
const MEND_EVERY: Duration = Duration::from_secs(300);
const LEFT_FOR: Duration = Duration::from_secs(60);

/// Per session: what the last look saw.
#[derive(Default)]
struct Seen {
    /// The PTY log's mtime (ms) at the last inferred turn end handled.
    output_ms: i64,
    /// The facts cache's worktree generation and the branch tip then.
    generation: Option<(u64, Option<String>)>,
    /// `(output_ms, due_ms)`: output that was not quiet long enough at
    /// the last look, and when to look again (when it will be, or in
    /// [`RECHECK_MS`] at the latest, for a config that changed meanwhile).
    due: Option<(i64, i64)>,
}

/// The longest an inferred turn end waits for a config change
/// (`supervisor.quiet_secs`) to be seen.
const RECHECK_MS: i64 = 10_000;

/// Runs the checkpointer in this thread, for ever.
pub(super) fn run(state: &State) -> ! {
    crate::process::lower_thread_priority();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut generation = 0;
    let mut mended = std::time::Instant::now();
    let mut scanned: Option<std::time::Instant> = None;
    loop {
        // Woken by any change (a store commit: a turn's end), else every
        // half second (an inferred turn ends by time passing).
        let (count, cvar) = &state.changes;
        let guard = count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (guard, _) = cvar
            .wait_timeout_while(guard, EVERY, |now| *now <= generation)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        generation = *guard;
        drop(guard);
        let scan = scanned.is_none_or(|at| at.elapsed() >= SCAN_EVERY);
        if scan {
            scanned = Some(std::time::Instant::now());
        }
        if let Err(e) = look(state, &mut seen, scan) {
            tracing::warn!(error = %crate::error_chain(&e), "checkpointing turns failed");
        }
        if mended.elapsed() >= MEND_EVERY {
            mended = std::time::Instant::now();
            mend(state);
        }
    }
}

/// What a command killed mid-checkpoint left while this supervisor runs
/// (its start mends the rest: [`super::reconcile`]).
fn mend(state: &State) {
    crate::git::sweep_scratch(&state.paths.state_dir);
    let Ok(store) = state.store() else { return };
    for (repo_id, _, root) in store.repos().unwrap_or_default() {
        let Ok(repo) = state.discover(&root) else { continue };
        let lock = state.repo_lock(&repo.common_dir);
        let _held = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match checkpoints::mend_refs(&repo, &store, repo_id, LEFT_FOR) {
            Ok(done) => done.iter().for_each(|m| tracing::warn!("checkpoints: {m}")),
            Err(e) => tracing::warn!(error = %crate::error_chain(&e), "cannot check the checkpoint refs"),
        }
    }
}

/// Checkpoints the turns the store counts as ended; with `scan`, also
/// those inferred from quiet output (a `stat` of each running session's
/// PTY log).
fn look(state: &State, seen: &mut HashMap<String, Seen>, scan: bool) -> Result<(), crate::session::SessionError> {
    let store = state.store()?;
    for pending in store.turns_pending()? {
        let done = match store.session(&pending.session_id)? {
            Some(session) => checkpoint(state, &store, &session, seen),
            None => true,
        };
        // A session being rewound is looked at again next time.
        if done {
            store.turns_seen(&pending.session_id, pending.turns)?;
        }
    }
    if !scan {
        return Ok(());
    }
    let now_ms = crate::unix_now_ms();
    let live = state.live_sessions()?;
    let running: Vec<&Session> = live.iter().filter(|s| s.state == SessionState::Running).collect();
    seen.retain(|id, _| running.iter().any(|s| s.id == *id));
    for session in running.iter().filter(|s| !crate::agent::reports_state(&s.agent)) {
        let Some(output_ms) = output_ms(state, session) else { continue };
        let entry = seen.entry(session.id.clone()).or_insert_with(|| Seen {
            // First look (this supervisor just started): output older than
            // the session's last checkpoint was taken care of already.
            output_ms: store.last_checkpoint(&session.id).ok().flatten().map_or(0, |(c, _)| c.at_ms),
            generation: None,
            due: None,
        });
        if output_ms <= entry.output_ms {
            continue;
        }
        // Not quiet long enough at the last look, and no new output: no
        // config to read (200 sessions, twice a second) until it may be.
        if entry.due.is_some_and(|(seen, due)| seen == output_ms && now_ms < due) {
            continue;
        }
        let Ok((_, config)) = repo_of(state, &store, session) else { continue };
        let quiet_ms = i64::try_from(config.supervisor.quiet_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now_ms - output_ms < quiet_ms {
            entry.due = Some((output_ms, output_ms.saturating_add(quiet_ms).min(now_ms + RECHECK_MS)));
            continue;
        }
        if checkpoint(state, &store, session, seen) {
            entry_done(seen, &session.id, output_ms);
        }
    }
    Ok(())
}

/// Unix ms of the last write to the session's PTY log.
fn output_ms(state: &State, session: &Session) -> Option<i64> {
    let log = crate::host::screen::PtyLog::path(&state.paths.session_dir(&session.id));
    let modified = std::fs::metadata(log).and_then(|m| m.modified()).ok()?;
    i64::try_from(modified.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// Records that an inferred turn ending at `output_ms` was taken care of.
fn entry_done(seen: &mut HashMap<String, Seen>, id: &str, output_ms: i64) {
    if let Some(entry) = seen.get_mut(id) {
        entry.output_ms = output_ms;
    }
}

/// Checkpoints one session for a turn's end; failures are logged. False
/// when a rewind of it is under way: look again later.
fn checkpoint(state: &State, store: &Store, session: &Session, seen: &mut HashMap<String, Seen>) -> bool {
    if !session.path.is_dir() {
        return true;
    }
    let Some(_no_rewind) = checkpoints::hold_unless_rewinding(&state.paths, session) else { return false };
    let Ok((repo, config)) = repo_of(state, store, session) else { return true };
    // Nothing seen changing in the worktree, nor the branch moving: no
    // git at all.
    let key = state.facts.worktree_generation(session).map(|g| (g, state.facts.branch_tip(&repo, &session.branch)));
    let entry = seen.entry(session.id.clone()).or_default();
    if key.is_some() && key == entry.generation {
        // The newest checkpoint may hold this turn's end (see
        // `checkpoints::turn_ended_unchanged`); the store alone says.
        if let Err(e) = checkpoints::turn_ended_unchanged(store, session) {
            tracing::warn!(session = %session.slug, error = %crate::error_chain(&e), "cannot label a checkpoint");
        }
        return true;
    }
    let lock = state.repo_lock(&repo.common_dir);
    let _held = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let keep = config.checkpoints.keep;
    match checkpoints::take(&state.paths, &repo, store, session, checkpoints::Take::of(Cause::Turn, keep)) {
        Ok(made) => {
            entry.generation = key;
            if let Some(c) = made {
                tracing::debug!(session = %session.slug, n = c.n, "checkpoint");
            }
        }
        Err(e) => {
            tracing::warn!(session = %session.slug, error = %crate::error_chain(&e), "cannot checkpoint a turn");
        }
    }
    true
}
