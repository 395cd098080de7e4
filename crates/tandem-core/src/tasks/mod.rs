//! Tasks: starting one (its name, its trials' create requests), finding
//! one and its trials, promoting a trial, setting a task's status.
//!
//! The supervisor runs the steps that change anything under the
//! repository's lock (`supervisor/tasks.rs`), so two commands cannot both
//! take a task's name or both promote; the CLI only asks and prints. What
//! a trial is given and reports (its brief, its handoff, the check) is in
//! [`trial`]. Ids are random (`rand`), as sessions' are.

pub mod report;
pub mod trial;

use rand::RngCore;

use crate::agent::Kind;
use crate::config::Config;
use crate::git;
use crate::protocol::{CreateRequest, TaskNewRequest, TrialOf};
use crate::repo::Repository;
use crate::session::{self, SessionError, facts::live_state, slugs};
use crate::store::{Session, SessionState, Store, Task, TaskStatus};
use trial::brief;

/// The most trials one task may start.
pub const MAX_TRIALS: usize = 16;

/// A task request refused, with the fact that refused it.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("the objective is empty; say what the trials should achieve")]
    EmptyObjective,
    #[error("--trials must be 1 to {MAX_TRIALS}, not {trials}")]
    TrialCount { trials: usize },
    #[error("{agents} agents for {trials} trial(s); pass --trials {agents} or fewer agents")]
    TooManyAgents { agents: usize, trials: usize },
    #[error("an agent in --agents is empty; list them like `--agents claude,codex`")]
    EmptyAgent,
    #[error("--check is empty; give the command that checks a trial, or leave it out")]
    EmptyCheck,
    #[error("a task named `{slug}` already exists; pick another --name")]
    NameTaken { slug: String },
    #[error("a branch named `{family}` exists, so trial branches `{family}/t1`… cannot be made; pick another --name")]
    FamilyBranch { family: String },
    #[error("a session named `{name}` already exists; pick another --name")]
    TrialNameTaken { name: String },
    #[error("branch `{branch}` already exists; pick another --name")]
    TrialBranch { branch: String },
    #[error("no task named `{name}` here; `tandem task list` shows them")]
    NotFound { name: String },
    #[error("task `{task}` has no trial `{which}`; name one by number (1 to {count}) or session name")]
    NoSuchTrial { task: String, which: String, count: usize },
    #[error("task `{task}` already promoted {slug} (branch {branch}); nothing changed")]
    AlreadyPromoted { task: String, slug: String, branch: String },
    #[error("trial {slug} is archived; bring it back with `tandem restore {slug}` first")]
    TrialArchived { slug: String },
    #[error("branch `{branch}` already exists; rename or delete it first")]
    ResultBranch { branch: String },
    /// A trial with neither its worktree nor its branch.
    #[error("trial `{slug}` has no worktree and its branch is gone")]
    TrialGone { slug: String },
    /// The check could not be started (`sh` or the fence).
    #[error("cannot run `{command}`: {error}")]
    CheckNotRun { command: String, error: String },
}

/// A task's refusal as a session error, keeping its kind and hints, for
/// the supervisor's answer.
impl From<TaskError> for SessionError {
    fn from(e: TaskError) -> SessionError {
        SessionError::Refused(crate::model::error::Failure::of(&e))
    }
}

/// The checks of a `task new` that need no repository: a non-empty
/// objective, 1 to [`MAX_TRIALS`] trials, no more agents than trials,
/// no empty agent or check. Returns the number of trials.
///
/// # Errors
/// The [`TaskError`] naming the first check that failed.
pub fn check_new(req: &TaskNewRequest) -> Result<usize, TaskError> {
    if req.objective.trim().is_empty() {
        return Err(TaskError::EmptyObjective);
    }
    let trials = req.trials.unwrap_or(if req.agents.is_empty() { 2 } else { req.agents.len() });
    if !(1..=MAX_TRIALS).contains(&trials) {
        return Err(TaskError::TrialCount { trials });
    }
    if req.agents.len() > trials {
        return Err(TaskError::TooManyAgents { agents: req.agents.len(), trials });
    }
    if req.agents.iter().any(|a| a.trim().is_empty()) {
        return Err(TaskError::EmptyAgent);
    }
    if req.check.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err(TaskError::EmptyCheck);
    }
    Ok(trials)
}

/// A task ready to be stored, and the create requests of its trials.
#[derive(Debug)]
pub struct NewTask {
    pub task: Task,
    pub trials: Vec<CreateRequest>,
}

/// Names a new task of repository `repo_id` and makes its trials'
/// create requests: the name is `req.name` as a slug, else the
/// objective's first five words, made unique (`-2`, `-3`, …); its trials
/// are sessions `<slug>-t1` … on branches `<prefix><slug>/t1` …, each
/// with its brief. Run under the repository's lock: nothing is written.
///
/// # Errors
/// [`check_new`]'s, a taken name, session name or branch
/// ([`TaskError`]), a bad `--name` ([`slugs::NameError`]), git and store
/// errors.
pub fn plan_new(
    store: &Store,
    repo: &Repository,
    config: &Config,
    repo_id: i64,
    req: &TaskNewRequest,
) -> Result<NewTask, SessionError> {
    let trials = check_new(req)?;
    let objective = req.objective.trim();
    let slug = match &req.name {
        Some(name) => slugs::slug_of(name)?,
        None => {
            let words: Vec<&str> = objective.split_whitespace().take(5).collect();
            let base = slugs::slugify(&words.join(" "));
            let base = if base.is_empty() { "task".to_owned() } else { base.chars().take(40).collect() };
            let base = base.trim_end_matches('-').to_owned();
            let mut slug = base.clone();
            let mut n = 1;
            while store.task_by_slug(repo_id, &slug)?.is_some() {
                n += 1;
                slug = format!("{base}-{n}");
            }
            slug
        }
    };
    if store.task_by_slug(repo_id, &slug)?.is_some() {
        return Err(TaskError::NameTaken { slug }.into());
    }
    let prefix = session::branch_prefix(repo, config, &req.env)?;
    let family = format!("{prefix}{slug}");
    if git::branch_exists(&repo.root, &family)? {
        return Err(TaskError::FamilyBranch { family }.into());
    }
    for i in 1..=trials {
        let (name, branch) = (format!("{slug}-t{i}"), format!("{family}/t{i}"));
        if store.session_by_slug(repo_id, &name)?.is_some() {
            return Err(TaskError::TrialNameTaken { name }.into());
        }
        if git::branch_exists(&repo.root, &branch)? {
            return Err(TaskError::TrialBranch { branch }.into());
        }
    }
    let mut id = [0u8; 6];
    rand::rng().fill_bytes(&mut id);
    let task = Task {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
        repo_id,
        slug: slug.clone(),
        objective: objective.to_owned(),
        check: req.check.clone(),
        owned: req.owns.clone(),
        status: TaskStatus::InProgress,
        promoted: None,
        created_at: crate::unix_now(),
    };
    let path = req.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| std::ffi::OsStr::new(v.as_str()));
    let claude_installed = crate::process::which("claude", path, std::path::Path::new("/")).is_some();
    let requests = (1..=trials)
        .map(|i| {
            let agent = (!req.agents.is_empty()).then(|| req.agents[(i - 1) % req.agents.len()].trim().to_owned());
            let branch = format!("{family}/t{i}");
            let trial = i64::try_from(i).unwrap_or(i64::MAX);
            let brief = brief(&slug, objective, trial, trials, &branch, &req.owns, req.check.as_deref());
            let default_is_shell = agent.is_none() && !claude_installed;
            let prompt = if default_is_shell {
                None
            } else {
                Kind::of(agent.as_deref().unwrap_or("claude")).task_prompt(&brief)
            };
            CreateRequest {
                cwd: req.cwd.clone(),
                name: Some(format!("{slug}-t{i}")),
                title: Some(format!("{} (t{i})", short(objective, 60))),
                agent,
                prompt,
                base: req.base.clone(),
                branch: Some(branch),
                from_pr: None,
                env: req.env.clone(),
                rows: 24,
                cols: 80,
                fork_of: None,
                overlay: None,
                review_of: None,
                task: Some(TrialOf { task_id: task.id.clone(), trial, owned: req.owns.clone(), brief, new_task: None }),
                vars: Vec::new(),
                env_files: Vec::new(),
                env_file_vars: Vec::new(),
                sandbox: req.sandbox.clone(),
                creator: req.creator.clone(),
            }
        })
        .collect();
    Ok(NewTask { task, trials: requests })
}

/// The first line of `text`, cut to `max` characters with `…`.
#[must_use]
pub fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// The task called `name` in `repo`, and its trials (archived ones too,
/// by trial number).
///
/// # Errors
/// [`TaskError::NotFound`]; store errors.
pub fn find(store: &Store, repo: &Repository, name: &str) -> Result<(Task, Vec<Session>), SessionError> {
    let missing = || SessionError::from(TaskError::NotFound { name: name.to_owned() });
    let repo_id = store.find_repo(&repo.common_dir)?.ok_or_else(missing)?;
    let task = store.task_by_slug(repo_id, name)?.ok_or_else(missing)?;
    let trials = store.trials(&task.id)?;
    Ok((task, trials))
}

/// The trial `which` names: a number (`2`, `t2`) or a session name.
///
/// # Errors
/// [`TaskError::NoSuchTrial`].
pub fn pick<'a>(task: &Task, trials: &'a [Session], which: &str) -> Result<&'a Session, TaskError> {
    let number = which.strip_prefix('t').unwrap_or(which).parse::<i64>().ok();
    trials
        .iter()
        .find(|s| s.slug == which || (number.is_some() && s.trial == number))
        .ok_or_else(|| TaskError::NoSuchTrial { task: task.slug.clone(), which: which.to_owned(), count: trials.len() })
}

/// What [`promote`] did.
#[derive(Debug)]
pub struct Promoted {
    pub task: Task,
    /// The promoted trial, on its result branch.
    pub winner: Session,
    /// The other trials not archived yet, for the caller to archive.
    pub others: Vec<Session>,
}

/// Promotes trial `which` of task `name`: its branch is renamed to
/// `<prefix><task>/result` where it is checked out (so its agent carries
/// on there), the session and the task record it, and the task is
/// `in-review`. Nothing is merged or archived. A promote cut short after
/// git renamed the branch (a kill) is finished. Run under the
/// repository's lock.
///
/// # Errors
/// [`TaskError`] (no such task or trial, already promoted, the trial is
/// archived, the result branch exists); git and store errors.
pub fn promote(
    store: &Store,
    repo: &Repository,
    config: &Config,
    env: &[(String, String)],
    name: &str,
    which: &str,
) -> Result<Promoted, SessionError> {
    let (task, trials) = find(store, repo, name)?;
    let winner = pick(&task, &trials, which)?;
    if let Some(done) = trials.iter().find(|s| task.promoted.as_deref() == Some(s.id.as_str())) {
        return Err(TaskError::AlreadyPromoted {
            task: task.slug.clone(),
            slug: done.slug.clone(),
            branch: done.branch.clone(),
        }
        .into());
    }
    if live_state(winner) == SessionState::Archived {
        return Err(TaskError::TrialArchived { slug: winner.slug.clone() }.into());
    }
    let prefix = session::branch_prefix(repo, config, env)?;
    let result = format!("{prefix}{}/result", task.slug);
    // A promote cut short after git renamed the branch (a kill) is
    // finished: the trial's worktree is on the result branch and its old
    // branch is gone (or `doctor --fix` already recorded it).
    let resumed = winner.branch == result
        || (!git::branch_exists(&repo.root, &winner.branch)?
            && git::worktree_of_branch(&repo.root, &result)?.is_some_and(|at| session::same_path(&at, &winner.path)));
    if git::branch_exists(&repo.root, &result)? && !resumed {
        return Err(TaskError::ResultBranch { branch: result }.into());
    }
    // Renamed where it is checked out, so the trial's session (agent
    // included) carries on on the result branch.
    if !resumed {
        git::rename_branch(&repo.root, &winner.branch, &result)?;
    }
    store.set_branch(&winner.id, &result)?;
    store.set_promoted(&task.id, &winner.id)?;
    store.set_task_status(&task.id, TaskStatus::InReview)?;
    let winner = store.session(&winner.id)?.unwrap_or_else(|| Session { branch: result, ..winner.clone() });
    let others = trials.into_iter().filter(|s| s.id != winner.id && live_state(s) != SessionState::Archived).collect();
    Ok(Promoted { task, winner, others })
}

/// Sets the status of task `name`; returns the task as it was.
///
/// # Errors
/// [`TaskError::NotFound`]; store errors.
pub fn set_status(store: &Store, repo: &Repository, name: &str, status: TaskStatus) -> Result<Task, SessionError> {
    let (task, _) = find(store, repo, name)?;
    store.set_task_status(&task.id, status)?;
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(trials: Option<usize>, agents: &[&str]) -> TaskNewRequest {
        TaskNewRequest {
            cwd: "/".into(),
            objective: "Do it".into(),
            name: None,
            trials,
            agents: agents.iter().map(|a| (*a).to_owned()).collect(),
            base: None,
            check: None,
            owns: Vec::new(),
            sandbox: None,
            env: Vec::new(),
            creator: None,
        }
    }

    #[test]
    fn new_tasks_are_checked_before_anything_is_made() {
        assert_eq!(check_new(&request(None, &[])).ok(), Some(2));
        assert_eq!(check_new(&request(None, &["claude", "codex", "shell"])).ok(), Some(3));
        assert!(matches!(check_new(&request(Some(0), &[])), Err(TaskError::TrialCount { trials: 0 })));
        assert!(matches!(check_new(&request(Some(17), &[])), Err(TaskError::TrialCount { trials: 17 })));
        assert!(matches!(
            check_new(&request(Some(1), &["shell", "shell"])),
            Err(TaskError::TooManyAgents { agents: 2, trials: 1 })
        ));
        assert!(matches!(check_new(&request(None, &["shell", " "])), Err(TaskError::EmptyAgent)));
        let empty = TaskNewRequest { objective: "  ".into(), ..request(None, &[]) };
        assert!(matches!(check_new(&empty), Err(TaskError::EmptyObjective)));
        let check = TaskNewRequest { check: Some(" ".into()), ..request(None, &[]) };
        assert!(matches!(check_new(&check), Err(TaskError::EmptyCheck)));
        assert_eq!(short("first line\nsecond", 5), "first…");
    }
}
