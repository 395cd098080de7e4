//! A task's trials side by side: what `tandem task show` prints and the
//! MCP server's `task_show` answers (docs/json.md): each trial's state,
//! what it changed, the check's result (run where missing), its time,
//! tokens, cost and handoff.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::client::{ClientError, Tandem};
use crate::model::error::{ErrorKind, Failure};
use crate::protocol::Request;
use crate::session::{self, SessionError};
use crate::store::{Activity, CheckResult, EventKind, Session, SessionState, Task};
use crate::{conflicts, git, ship};

use super::trial;

/// How long a check may run in one worktree.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A check's result for one trial.
#[derive(Debug, Clone, Serialize)]
pub struct CheckJson {
    pub command: String,
    pub passed: bool,
    /// `None`: killed (the timeout).
    pub exit_code: Option<i32>,
    pub duration_ms: i64,
    /// Its output, stderr and stdout together.
    pub output: String,
}

/// One trial, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct TrialJson {
    /// 1, 2, …
    pub trial: i64,
    pub name: String,
    pub branch: String,
    pub agent: String,
    /// Its listed state (`running`, `idle`, …, `archived`).
    pub state: String,
    pub promoted: bool,
    pub insertions: u32,
    pub deletions: u32,
    pub files: Vec<String>,
    pub check: Option<CheckJson>,
    /// From its creation to its last event (to now while it works).
    pub duration_secs: i64,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    pub handoff: Option<String>,
    pub handoff_summary: Option<String>,
    /// Files it changed outside the paths its brief gives it.
    pub outside_owned: Vec<String>,
}

/// A task and its trials, as [`show`] found them.
#[derive(Debug, Clone)]
pub struct Shown {
    pub task: Task,
    pub trials: Vec<TrialJson>,
    /// The promoted trial's session name.
    pub promoted: Option<String>,
}

impl Shown {
    /// `tandem task show --json`'s object: `{task: {name, objective,
    /// status, check, owned, promoted}, trials: [...]}`.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "task": {
                "name": self.task.slug,
                "objective": self.task.objective,
                "status": self.task.status,
                "check": self.task.check,
                "owned": self.task.owned,
                "promoted": self.promoted,
            },
            "trials": self.trials,
        })
    }
}

fn refused(kind: ErrorKind, message: String) -> ClientError {
    ClientError::Session(SessionError::Refused(Failure::new(kind, message)))
}

/// A trial's work as one commit: its worktree's state (uncommitted work
/// included), else its branch's tip (archived).
///
/// # Errors
/// Git and state-folder failures; a trial with neither worktree nor
/// branch.
pub fn state_of(tandem: &Tandem, repo_root: &Path, s: &Session) -> Result<String, ClientError> {
    if s.path.is_dir() {
        tandem.paths.ensure_state_dir().map_err(SessionError::from)?;
        return Ok(conflicts::state_commit(&s.path, &tandem.paths.state_dir).map_err(SessionError::from)?);
    }
    git::resolve_commit(repo_root, &format!("refs/heads/{}", s.branch)).map_err(SessionError::from)?.ok_or_else(|| {
        refused(ErrorKind::NotFound, format!("trial `{}` has no worktree and its branch is gone", s.slug))
    })
}

/// Task `name` of the repository at `cwd`, its trials side by side. With
/// `run_checks`, the task's check runs (in parallel, each in its trial's
/// fence) where it has no stored result for a trial's current state;
/// `running(command, count)` is called first.
///
/// # Errors
/// [`ClientError`]: no such task, git or store failures, a check that
/// cannot start.
pub fn show(
    tandem: &Tandem,
    cwd: &Path,
    name: &str,
    run_checks: bool,
    running: &mut dyn FnMut(&str, usize),
) -> Result<Shown, ClientError> {
    let store = tandem.store()?;
    let (repo, config) = session::open_repo(&tandem.paths, cwd)?;
    let (task, trials) = super::find(&store, &repo, name)?;
    let now = crate::unix_now();
    let git_err = |e: git::GitError| ClientError::from(SessionError::from(e));
    let mut rows: Vec<TrialJson> = Vec::new();
    let mut states = Vec::new();
    for s in &trials {
        let state = state_of(tandem, &repo.root, s)?;
        let base_tip =
            git::resolve_commit(&repo.root, &s.base_ref).map_err(git_err)?.unwrap_or_else(|| s.base_commit.clone());
        let fork = git::merge_base(&repo.root, &state, &base_tip).map_err(git_err)?.unwrap_or(base_tip);
        let numstat =
            git::read(&repo.root, &["diff", "--numstat", "-z", "--no-renames", &fork, &state]).map_err(git_err)?;
        let counts = ship::parse_numstat(&numstat);
        let events = store.events(&s.id, 0, 1_000_000)?;
        let (tokens, cost) = trial::usage(&events);
        let handoff = events.iter().rev().find(|e| e.kind == EventKind::Handoff).map(|e| e.text.clone());
        let last = events.last().map_or(s.updated_at, |e| e.at_ms / 1000);
        let live = session::facts::live_state(s);
        let turn_over = matches!(s.activity, Some(Activity::Idle | Activity::Asking));
        let end = if live == SessionState::Running && !turn_over { now } else { last.max(s.created_at) };
        let files: Vec<String> = counts.iter().map(|c| c.path.clone()).collect();
        let outside = if s.owned.is_empty() {
            Vec::new()
        } else {
            files.iter().filter(|p| !conflicts::owns(&s.owned, p)).cloned().collect()
        };
        let (listed, _) = crate::rows::listed_state(&tandem.paths, s, now, config.supervisor.quiet_secs);
        rows.push(TrialJson {
            trial: s.trial.unwrap_or_default(),
            name: s.slug.clone(),
            branch: s.branch.clone(),
            agent: s.agent.clone(),
            state: if live == SessionState::Archived { "archived".to_owned() } else { listed.to_owned() },
            promoted: task.promoted.as_deref() == Some(s.id.as_str()),
            insertions: counts.iter().filter_map(|c| c.insertions).sum(),
            deletions: counts.iter().filter_map(|c| c.deletions).sum(),
            files,
            check: None,
            duration_secs: end - s.created_at,
            tokens,
            cost_usd: cost,
            handoff_summary: handoff.as_deref().and_then(trial::summary_line),
            handoff,
            outside_owned: outside,
        });
        states.push(state);
    }
    // The check: stored results, the missing ones run now, in parallel.
    if let Some(command) = &task.check {
        let mut results: HashMap<usize, CheckResult> = HashMap::new();
        let mut missing = Vec::new();
        for (i, (s, state)) in trials.iter().zip(&states).enumerate() {
            match store.check_result(&s.id, state, command)? {
                Some(r) => {
                    results.insert(i, r);
                }
                None if run_checks && s.path.is_dir() => missing.push(i),
                None => {}
            }
        }
        if !missing.is_empty() {
            running(command, missing.len());
        }
        // A sandboxed trial's check runs its agent's code: in its fence.
        let env = session::env::process_env().0;
        let mut fences = HashMap::new();
        for &i in &missing {
            if let Some(fence) = session::fence(&tandem.paths, &repo, &config, &trials[i], &env, None)? {
                fences.insert(i, fence);
            }
        }
        let ran: Vec<(usize, std::io::Result<CheckResult>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = missing
                .iter()
                .map(|&i| {
                    let path = trials[i].path.clone();
                    let fence = fences.get(&i);
                    scope.spawn(move || (i, trial::run_check(&path, command, CHECK_TIMEOUT, fence)))
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (i, result) in ran {
            let result = result.map_err(|e| refused(ErrorKind::Failed, format!("cannot run `{command}`: {e}")))?;
            // Kept by the supervisor, so this state is not checked again.
            let request = Request::CheckRan {
                session_id: trials[i].id.clone(),
                state: states[i].clone(),
                command: command.clone(),
                result: result.clone(),
            };
            tandem.supervisor()?.request(&request)?;
            results.insert(i, result);
        }
        for (i, row) in rows.iter_mut().enumerate() {
            row.check = results.remove(&i).map(|r| CheckJson {
                command: command.clone(),
                passed: r.exit_code == Some(0),
                exit_code: r.exit_code,
                duration_ms: r.duration_ms,
                output: r.output,
            });
        }
    }
    let promoted = trials.iter().find(|s| task.promoted.as_deref() == Some(s.id.as_str())).map(|s| s.slug.clone());
    Ok(Shown { task, trials: rows, promoted })
}
