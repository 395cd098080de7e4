//! The supervisor's pull request watcher: every live session with a pull
//! request is asked about every `github.poll_secs` seconds (its
//! repository's setting), with conditional requests ([`Watcher`]), so an
//! unchanged pull request costs three `304`s and no rate limit. A change
//! is stored with the session (the view and `list` show it); a state
//! change also goes into the session's history, and a merged pull
//! request marks the session `done` so it is offered for archiving.
//!
//! The token: the one the last `tandem pr` or `tandem merge --remote`
//! used for that API ([`Shared::learn`], memory only), else `GH_TOKEN` /
//! `GITHUB_TOKEN` from the supervisor's own environment, else `gh auth
//! token`. Without one, nothing is polled and the statuses `tandem pr`
//! stored stay as they are.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use crate::session::{self, SessionError};
use crate::ship::github::{GitHubError, PrState, PrStatus, Watcher};
use crate::ship::pull_request as pull;
use crate::store::{MetaUpdate, Session, TaskStatus};

use super::{State, repo_of};

/// How often the watcher wakes to see which pull requests are due.
const TICK: Duration = Duration::from_secs(1);

/// How long a failed poll (no token, GitHub unreachable) waits before the
/// next try, at least, in seconds.
const BACKOFF_SECS: i64 = 60;

/// What commands tell the watcher: tokens by API base URL, and sessions
/// to poll at once.
#[derive(Default)]
pub(super) struct Shared {
    tokens: Mutex<HashMap<String, String>>,
    now: Mutex<HashSet<String>>,
}

impl Shared {
    /// Keeps `token` for `api_url` and has `session_id` polled at the
    /// next tick.
    pub(super) fn learn(&self, session_id: &str, api_url: String, token: String) {
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(api_url, token);
        self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(session_id.to_owned());
    }

    fn token(&self, api_url: &str) -> Option<String> {
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(api_url).cloned()
    }

    fn take_now(&self) -> HashSet<String> {
        std::mem::take(&mut *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Runs forever in its own thread.
pub(super) fn watch(state: &State) {
    let mut watcher = Watcher::new();
    let mut due: HashMap<String, i64> = HashMap::new();
    loop {
        std::thread::sleep(TICK);
        if let Err(e) = poll(state, &mut watcher, &mut due) {
            tracing::warn!(error = %e, "polling pull requests failed");
        }
    }
}

/// One pass: polls each session whose turn has come.
fn poll(state: &State, watcher: &mut Watcher, due: &mut HashMap<String, i64>) -> Result<(), SessionError> {
    let sessions: Vec<Session> = state
        .live_sessions()?
        .iter()
        .filter(|s| s.pr_number.is_some() && s.pr.as_ref().is_none_or(|p| p.state != PrState::Merged))
        .cloned()
        .collect();
    due.retain(|id, _| sessions.iter().any(|s| &s.id == id));
    for id in state.pulls.take_now() {
        due.remove(&id);
    }
    let now = crate::unix_now();
    for session in sessions {
        if due.get(&session.id).is_some_and(|at| *at > now) {
            continue;
        }
        let config = {
            let store = state.store()?;
            repo_of(state, &store, &session)?.1
        };
        let every = i64::try_from(config.github.poll_secs).unwrap_or(i64::MAX);
        if every == 0 {
            due.insert(session.id.clone(), now + BACKOFF_SECS);
            continue;
        }
        match poll_one(state, watcher, &session, &config) {
            Ok(()) => {
                due.insert(session.id.clone(), now + every);
            }
            Err(e) => {
                tracing::debug!(session = %session.slug, error = %e, "pull request not polled");
                due.insert(session.id.clone(), now + every.max(BACKOFF_SECS));
            }
        }
    }
    Ok(())
}

fn poll_one(
    state: &State,
    watcher: &mut Watcher,
    session: &Session,
    config: &crate::config::Config,
) -> Result<(), PollError> {
    let number = session.pr_number.and_then(|n| u64::try_from(n).ok()).unwrap_or_default();
    let learned = state.pulls.token(config.github.api_url.trim_end_matches('/'));
    let env = |k: &str| match k {
        "GH_TOKEN" => learned.clone().or_else(|| std::env::var(k).ok()),
        _ => std::env::var(k).ok(),
    };
    let target = pull::target(session, config, &env)?;
    let status = watcher.status(&target.client, &target.repo, number)?;
    store_status(state, session, &status)?;
    Ok(())
}

/// Stores `status` when it differs from what the session has; records a
/// state change in the history; marks a merged session `done`.
fn store_status(state: &State, session: &Session, status: &PrStatus) -> Result<(), SessionError> {
    let old = session.pr.as_ref();
    let same = old.is_some_and(|o| {
        (o.number, &o.url, o.state, o.checks, o.review)
            == (status.number, &status.url, status.state, status.checks, status.review)
    });
    if same {
        return Ok(());
    }
    let store = state.store()?;
    store.set_pr(&session.id, status.number, Some(status))?;
    if let Some(line) = pull::state_change(old, status) {
        store.add_events(&[crate::store::NewEvent {
            session_id: &session.id,
            kind: crate::store::EventKind::Ship,
            text: line,
            data: Some(serde_json::to_value(status).unwrap_or_default()),
            indexed: true,
        }])?;
        if status.state == PrState::Merged {
            store.update_meta(&session.id, &MetaUpdate { status: Some(TaskStatus::Done), ..MetaUpdate::default() })?;
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Pull(#[from] pull::PullError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
}
