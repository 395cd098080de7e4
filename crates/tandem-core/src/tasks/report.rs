//! What a task looks like from outside: the tasks of a repository
//! (`tandem task list --json`), one task with its trials side by side
//! (`tandem task show --json`: state, diffstat, files, the check's
//! result, time, tokens, cost, handoff) and the diff between two trials
//! (`tandem task diff`). The CLI prints these and the web dashboard
//! answers them; neither computes them itself.
//!
//! Objects the CLI once built as `serde_json::json!` maps keep that
//! output's key order (alphabetical), so their fields are declared in it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::conflicts;
use crate::git;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::rows::listed_state;
use crate::session::{self, SessionError, facts};
use crate::ship::{self, FileCounts};
use crate::store::{Activity, CheckResult, EventKind, Session, SessionState, Store, StoreError, Task, TaskStatus};
use crate::tasks::{TaskError, trial};

/// How long a check may run in one worktree.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One task of a repository, as `tandem task list --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSummary {
    /// The check command (`--check`), if any.
    pub check: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// The task's name.
    pub name: String,
    pub objective: String,
    /// The promoted trial's session name.
    pub promoted: Option<String>,
    /// Each trial's state (`running`, `idle`, `archived`, …), by trial number.
    pub states: Vec<String>,
    pub status: TaskStatus,
    /// How many trials it has.
    pub trials: usize,
}

/// The tasks of the repository `repo_id` (the store's id), oldest first.
///
/// # Errors
/// Store errors.
pub fn list(store: &Store, repo_id: i64) -> Result<Vec<TaskSummary>, StoreError> {
    let mut summaries = Vec::new();
    for t in store.tasks(repo_id)? {
        let trials = store.trials(&t.id)?;
        let states = trials
            .iter()
            .map(|s| {
                if facts::live_state(s) == SessionState::Archived {
                    "archived".to_owned()
                } else {
                    facts::reported_state(s).to_owned()
                }
            })
            .collect();
        summaries.push(TaskSummary {
            check: t.check.clone(),
            created_at: t.created_at,
            name: t.slug.clone(),
            promoted: promoted_name(&t, &trials),
            states,
            status: t.status,
            trials: trials.len(),
            objective: t.objective,
        });
    }
    Ok(summaries)
}

/// The task itself in a [`TaskReport`].
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub check: Option<String>,
    pub name: String,
    pub objective: String,
    /// Paths the trials own (`--owns`).
    pub owned: Vec<String>,
    /// The promoted trial's session name.
    pub promoted: Option<String>,
    pub status: TaskStatus,
}

/// A check's result for one trial's state.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub command: String,
    /// Whether it exited 0.
    pub passed: bool,
    /// `None` when it was killed (timed out).
    pub exit_code: Option<i32>,
    pub duration_ms: i64,
    /// The end of its output (stdout and stderr).
    pub output: String,
}

/// One trial, side by side with the others.
#[derive(Debug, Clone, Serialize)]
pub struct TrialReport {
    /// Its number (1, 2, …).
    pub trial: i64,
    /// Its session's name.
    pub name: String,
    /// Its session's id (what the web dashboard's URLs name).
    pub id: String,
    pub branch: String,
    pub agent: String,
    /// As `tandem list` shows it, or `archived`.
    pub state: String,
    pub promoted: bool,
    /// Lines added and removed since it forked from its base.
    pub insertions: u32,
    pub deletions: u32,
    /// Files it changed (uncommitted work included).
    pub files: Vec<String>,
    /// The check's result for its current state; `None` when the task has
    /// no check or it was not run.
    pub check: Option<CheckReport>,
    /// Seconds it has worked (to its last event once its turn is over).
    pub duration_secs: i64,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    /// Its last handoff message, and that message's summary line.
    pub handoff: Option<String>,
    pub handoff_summary: Option<String>,
    /// Files it changed outside the paths it owns.
    pub outside_owned: Vec<String>,
}

/// A task and its trials, as `tandem task show --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub task: TaskInfo,
    pub trials: Vec<TrialReport>,
}

/// A trial's check still to run: which trial (its index in
/// [`TaskReport::trials`]), its worktree and state commit.
#[derive(Debug, Clone)]
pub struct PendingCheck {
    pub index: usize,
    pub session_id: String,
    pub worktree: std::path::PathBuf,
    pub state: String,
}

/// A trial's work as one commit: its worktree's state (uncommitted work
/// included, through a snapshot), else its branch's tip (archived).
///
/// # Errors
/// [`TaskError::TrialGone`] when it has neither; git errors.
pub fn state_of(paths: &Paths, repo_root: &Path, s: &Session) -> Result<String, SessionError> {
    if s.path.is_dir() {
        paths.ensure_state_dir()?;
        return Ok(conflicts::state_commit(&s.path, &paths.state_dir)?);
    }
    git::resolve_commit(repo_root, &format!("refs/heads/{}", s.branch))?
        .ok_or_else(|| TaskError::TrialGone { slug: s.slug.clone() }.into())
}

/// Task `task` with `trials` side by side, each with its stored check
/// result for its current state; answers the checks that have none yet
/// (live trials only) for the caller to run ([`run_checks`]) or leave.
///
/// # Errors
/// Git and store errors; [`TaskError::TrialGone`].
pub fn report(
    paths: &Paths,
    repo: &Repository,
    config: &Config,
    store: &Store,
    task: &Task,
    trials: &[Session],
) -> Result<(TaskReport, Vec<PendingCheck>), SessionError> {
    let now = crate::unix_now();
    let mut rows = Vec::new();
    let mut pending = Vec::new();
    for (index, s) in trials.iter().enumerate() {
        let state = state_of(paths, &repo.root, s)?;
        let base_tip = git::resolve_commit(&repo.root, &s.base_ref)?.unwrap_or_else(|| s.base_commit.clone());
        let fork = git::merge_base(&repo.root, &state, &base_tip)?.unwrap_or(base_tip);
        let numstat = git::read(&repo.root, &["diff", "--numstat", "-z", "--no-renames", &fork, &state])?;
        let counts = ship::parse_numstat(&numstat);
        let events = store.events(&s.id, 0, 1_000_000)?;
        let (tokens, cost) = trial::usage(&events);
        let handoff = events.iter().rev().find(|e| e.kind == EventKind::Handoff).map(|e| e.text.clone());
        let last = events.last().map_or(s.updated_at, |e| e.at_ms / 1000);
        let live = facts::live_state(s);
        let turn_over = matches!(s.activity, Some(Activity::Idle | Activity::Asking));
        let end = if live == SessionState::Running && !turn_over { now } else { last.max(s.created_at) };
        let files: Vec<String> = counts.iter().map(|c| c.path.clone()).collect();
        let outside = if s.owned.is_empty() {
            Vec::new()
        } else {
            files.iter().filter(|p| !conflicts::owns(&s.owned, p)).cloned().collect()
        };
        let (listed, _) = listed_state(paths, s, now, config.supervisor.quiet_secs);
        let check = match &task.check {
            None => None,
            Some(command) => match store.check_result(&s.id, &state, command)? {
                Some(r) => Some(check_report(command, r)),
                None => {
                    if s.path.is_dir() {
                        pending.push(PendingCheck {
                            index,
                            session_id: s.id.clone(),
                            worktree: s.path.clone(),
                            state: state.clone(),
                        });
                    }
                    None
                }
            },
        };
        rows.push(TrialReport {
            trial: s.trial.unwrap_or_default(),
            name: s.slug.clone(),
            id: s.id.clone(),
            branch: s.branch.clone(),
            agent: s.agent.clone(),
            state: if live == SessionState::Archived { "archived".to_owned() } else { listed.to_owned() },
            promoted: task.promoted.as_deref() == Some(s.id.as_str()),
            insertions: counts.iter().filter_map(|c| c.insertions).sum(),
            deletions: counts.iter().filter_map(|c| c.deletions).sum(),
            files,
            check,
            duration_secs: end - s.created_at,
            tokens,
            cost_usd: cost,
            handoff_summary: handoff.as_deref().and_then(trial::summary_line),
            handoff,
            outside_owned: outside,
        });
    }
    let info = TaskInfo {
        check: task.check.clone(),
        name: task.slug.clone(),
        objective: task.objective.clone(),
        owned: task.owned.clone(),
        promoted: promoted_name(task, trials),
        status: task.status,
    };
    Ok((TaskReport { task: info, trials: rows }, pending))
}

/// Runs the task's check for each of `pending`, in parallel, each in its
/// trial's worktree (in its fence when the trial is sandboxed: the check
/// runs its agent's code); answers each result with its [`PendingCheck`].
/// `env`: the environment a fence is made with.
///
/// # Errors
/// [`TaskError::CheckNotRun`] when `sh` or the fence cannot start;
/// fence errors.
pub fn run_checks(
    paths: &Paths,
    repo: &Repository,
    config: &Config,
    trials: &[Session],
    command: &str,
    pending: &[PendingCheck],
    env: &[(String, String)],
) -> Result<Vec<(PendingCheck, CheckResult)>, SessionError> {
    let mut fences = HashMap::new();
    for p in pending {
        if let Some(fence) = session::fence(paths, repo, config, &trials[p.index], env, None)? {
            fences.insert(p.index, fence);
        }
    }
    let ran: Vec<(PendingCheck, std::io::Result<CheckResult>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = pending
            .iter()
            .map(|p| {
                let fence = fences.get(&p.index);
                scope.spawn(move || (p.clone(), trial::run_check(&p.worktree, command, CHECK_TIMEOUT, fence)))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    ran.into_iter()
        .map(|(p, result)| match result {
            Ok(result) => Ok((p, result)),
            Err(error) => Err(TaskError::CheckNotRun { command: command.to_owned(), error: error.to_string() }.into()),
        })
        .collect()
}

/// `result` of `command` as a [`TrialReport::check`].
#[must_use]
pub fn check_report(command: &str, result: CheckResult) -> CheckReport {
    CheckReport {
        command: command.to_owned(),
        passed: result.exit_code == Some(0),
        exit_code: result.exit_code,
        duration_ms: result.duration_ms,
        output: result.output,
    }
}

/// The difference between two trials' work: `git diff -M` from trial
/// `a`'s state to trial `b`'s (uncommitted work included), as
/// `tandem task diff` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TrialDiff {
    /// The two trials' session names.
    pub a: String,
    pub b: String,
    /// Their state commits.
    pub from: String,
    pub to: String,
    /// Per-file counts (renames under their new name).
    pub files: Vec<FileCounts>,
    pub insertions: u32,
    pub deletions: u32,
    /// The unified diff, cut at the asked size on a line end.
    pub patch: String,
    /// Whether [`TrialDiff::patch`] was cut.
    pub truncated: bool,
}

/// The two trials' state commits, `a`'s then `b`'s ([`state_of`]).
///
/// # Errors
/// As [`state_of`].
pub fn states(paths: &Paths, repo_root: &Path, a: &Session, b: &Session) -> Result<(String, String), SessionError> {
    Ok((state_of(paths, repo_root, a)?, state_of(paths, repo_root, b)?))
}

/// [`TrialDiff`] from `a` to `b`, the patch cut at `patch_limit` bytes.
/// git runs with `--no-ext-diff --no-textconv`: no program of the
/// repository's choosing runs.
///
/// # Errors
/// As [`state_of`]; git errors.
pub fn diff(
    paths: &Paths,
    repo_root: &Path,
    a: &Session,
    b: &Session,
    patch_limit: usize,
) -> Result<TrialDiff, SessionError> {
    let (from, to) = states(paths, repo_root, a, b)?;
    let run = |args: &[&str]| -> Result<Vec<u8>, SessionError> {
        let mut cmd = git::command(repo_root);
        cmd.args(["diff", "--no-ext-diff", "--no-textconv", "--no-color", "-M"]).args(args).args([
            from.as_str(),
            to.as_str(),
            "--",
        ]);
        Ok(git::output(cmd)?.stdout)
    };
    let files = ship::parse_numstat(&String::from_utf8_lossy(&run(&["--numstat", "-z"])?));
    let insertions = files.iter().filter_map(|f| f.insertions).sum();
    let deletions = files.iter().filter_map(|f| f.deletions).sum();
    let bytes = run(&[])?;
    let (patch, truncated) = if bytes.len() <= patch_limit {
        (&bytes[..], false)
    } else {
        let end = bytes[..patch_limit].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        (&bytes[..end], true)
    };
    Ok(TrialDiff {
        a: a.slug.clone(),
        b: b.slug.clone(),
        from,
        to,
        files,
        insertions,
        deletions,
        patch: String::from_utf8_lossy(patch).into_owned(),
        truncated,
    })
}

fn promoted_name(task: &Task, trials: &[Session]) -> Option<String> {
    trials.iter().find(|s| task.promoted.as_deref() == Some(s.id.as_str())).map(|s| s.slug.clone())
}
