//! The reaper: a thread that, every [`REAP_EVERY`], stops agents idle
//! longer than their repository allows ([`reap_idle`]) and gets trials'
//! handoffs ([`handoffs`]).

use std::thread;
use std::time::Duration;

use crate::session::SessionError;
use crate::store::{Session, SessionState};

use super::agents::stop_agent;
use super::{State, repo_of};

/// Runs the reaper in this thread, for ever.
pub(super) fn run(state: &State) -> ! {
    let mut trimmed = std::time::Instant::now();
    loop {
        thread::sleep(REAP_EVERY);
        if trimmed.elapsed() >= TRIM_EVERY {
            trimmed = std::time::Instant::now();
            crate::process::release_free_memory();
        }
        if let Err(e) = reap_idle(state) {
            tracing::warn!(error = %e, "reaping idle sessions failed");
        }
        if let Err(e) = handoffs(state) {
            tracing::warn!(error = %e, "asking trials for their handoff failed");
        }
    }
}

/// How often the reaper looks for sessions idle too long.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// How often the supervisor gives freed memory back to the kernel
/// ([`crate::process::release_free_memory`]; issue 23: 88 MiB RSS at 200
/// sessions, most of it freed memory kept by malloc arenas).
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Stops every agent that reports its state and has been `idle` longer
/// than its repository's `supervisor.idle_timeout_secs`, unless the
/// session is pinned or a terminal is attached. The session becomes
/// `stopped`, marked ([`crate::session::idle_stop`]) so that the next
/// attach, send or answer starts it again, resuming its conversation.
fn reap_idle(state: &State) -> Result<(), SessionError> {
    let store = state.store()?;
    let now = crate::unix_now();
    let candidates: Vec<Session> = state
        .live_sessions()?
        .iter()
        .filter(|s| {
            s.state == SessionState::Running && s.activity == Some(crate::store::Activity::Idle) && !s.meta.pinned
        })
        .cloned()
        .collect();
    for session in candidates {
        let Ok((_, config)) = repo_of(state, &store, &session) else { continue };
        let timeout = config.supervisor.idle_timeout_secs;
        let idle_for = now - session.activity_at.unwrap_or(now);
        if timeout == 0 || idle_for < i64::try_from(timeout).unwrap_or(i64::MAX) {
            continue;
        }
        if crate::host::client::attached(&state.paths, &session).is_ok_and(|n| n > 0) {
            continue;
        }
        tracing::info!(session = %session.slug, idle_for, "stopping an idle agent");
        stop_agent(&state.paths, &store, &session, &config)?;
        // The next attach, send or answer starts it again (issue 19).
        if let Err(e) = crate::session::idle_stop::mark(&state.paths, &session, idle_for.unsigned_abs()) {
            tracing::warn!(session = %session.slug, error = %e, "cannot mark an idle-stopped session");
        }
        store.add_events(&[crate::store::NewEvent {
            session_id: &session.id,
            kind: crate::store::EventKind::State,
            text: format!("stopped after {idle_for} s idle; `tandem respawn {}` resumes it", session.slug),
            data: None,
            indexed: true,
        }])?;
    }
    Ok(())
}

/// For each trial whose agent (one that reports its state) is `idle`
/// (or `asking`, which is only ever stored, never asked):
/// stores its handoff when its last message has one, else asks for it
/// once ([`crate::tasks::trial`]).
fn handoffs(state: &State) -> Result<(), SessionError> {
    use crate::store::{EventKind, NewEvent};
    use crate::tasks::trial::{self, HandoffStep};
    let store = state.store()?;
    let trials: Vec<Session> = state
        .live_sessions()?
        .iter()
        .filter(|s| {
            s.state == SessionState::Running
                && s.task_id.is_some()
                && matches!(s.activity, Some(crate::store::Activity::Idle | crate::store::Activity::Asking))
        })
        .cloned()
        .collect();
    for trial in trials {
        let events = store.recent_events(&trial.id, 200)?;
        match trial::handoff_step(&events) {
            HandoffStep::Nothing => {}
            HandoffStep::Store { event, text } => store.add_events(&[NewEvent {
                session_id: &trial.id,
                kind: EventKind::Handoff,
                text,
                data: Some(trial::handoff_data(event)),
                indexed: true,
            }])?,
            // A trial that asks the user a question waits for the answer,
            // not for tandem's request.
            HandoffStep::Ask if trial.activity == Some(crate::store::Activity::Asking) => {}
            HandoffStep::Ask => {
                let mut text = trial::handoff_request();
                if !crate::agent::Kind::of(&trial.agent).structured() {
                    // Typed into a terminal: a newline would press Enter.
                    text = text.replace('\n', " ");
                }
                if let Err(e) = crate::host::client::prompt(&state.paths, &store, &trial, &text) {
                    tracing::debug!(session = %trial.slug, error = %e, "the handoff request did not reach the agent");
                }
            }
        }
    }
    Ok(())
}
