//! Session lifecycle: create and remove. The supervisor calls these while
//! holding the repository's lock; `tandem list` reads sessions through
//! [`facts`].
//!
//! Creating validates everything first (name, branch, base ref, agent), so
//! bad input changes nothing; then it writes the row (`creating`), adds the
//! worktree, and has the caller start the host. Removing refuses to lose
//! work: uncommitted or untracked files, or commits in neither the base
//! nor any remote branch, stop it unless `force`, and even then a snapshot
//! of everything is stored under `refs/tandem/archive/<slug>/<unix-time>`
//! first. A worktree is only ever removed by `git worktree remove`.

pub mod facts;
pub mod include;
pub mod names;

use std::path::{Path, PathBuf};

use crate::agent::{self, AgentError, AgentSpec};
use crate::config::{Config, ConfigError};
use crate::git::{self, GitError};
use crate::paths::{Paths, PathsError};
use crate::protocol::{CreateRequest, RemoveReport};
use crate::repo::{RepoError, Repository};
use crate::store::{Meta, Session, SessionState, Store, StoreError};

pub use names::NameError;

/// Branch names that are never a session's branch, whatever the config.
pub const ALWAYS_PROTECTED: &[&str] = &["main", "master", "develop"];

/// Errors from session operations. Each message is one line that says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(
        "a session named `{slug}` already exists in this repository; pick another name, or remove it with `tandem rm {slug}`"
    )]
    NameTaken { slug: String },
    #[error(
        "branch `{branch}` already exists; pick another session name, or delete the branch with `git branch -d {branch}`"
    )]
    BranchExists { branch: String },
    #[error("`{branch}` is not a valid git branch name; use letters, digits, `.`, `_` and `-`")]
    InvalidBranch { branch: String },
    #[error("`{branch}` is a protected branch and never a session's branch; pick another session name")]
    Protected { branch: String },
    #[error("{} already exists; pick another session name, or move that folder away", path.display())]
    PathExists { path: PathBuf },
    #[error("base ref `{base}` does not name a commit; pass an existing branch, tag or commit to --base")]
    BaseNotFound { base: String },
    #[error("this repository has no commits yet; make a first commit, then run tandem again")]
    NoCommits,
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("no session named `{name}` in this repository; `tandem list` shows the sessions")]
    NotFound { name: String },
    #[error(
        "session `{slug}` has {what}; commit or push them, or run `tandem rm --force {slug}` (a snapshot is kept under refs/tandem/archive/{slug}/)"
    )]
    WouldLoseWork { slug: String, what: String },
    #[error("the agent could not start: {message}")]
    Host { message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A validated request to create a session; nothing has changed yet.
#[derive(Debug, Clone)]
pub struct Plan {
    pub repo: Repository,
    pub repo_id: i64,
    pub config: Config,
    pub slug: String,
    pub branch: String,
    pub path: PathBuf,
    pub base_ref: String,
    pub base_commit: String,
    pub agent: AgentSpec,
    /// Free text, from `--title`.
    pub title: Option<String>,
}

/// The repository `dir` is in and its config layers.
///
/// # Errors
/// [`SessionError::Repo`] or [`SessionError::Config`].
pub fn open_repo(paths: &Paths, dir: &Path) -> Result<(Repository, Config), SessionError> {
    let repo = Repository::discover(dir)?;
    let config = Config::load(&paths.config_dir.join("config.toml"), Some(&repo.root.join(".tandem.toml")))?;
    Ok((repo, config))
}

/// Validates a create request against the repository (from
/// [`open_repo`] on `req.cwd`) and the store.
///
/// # Errors
/// A [`SessionError`] naming the first bad input.
pub fn plan(
    paths: &Paths,
    store: &Store,
    repo: Repository,
    config: Config,
    req: &CreateRequest,
) -> Result<Plan, SessionError> {
    let repo_id = store.upsert_repo(&repo.common_dir, &repo.root)?;
    let worktrees = worktrees_dir(paths, &repo, &config);
    let taken = |slug: &str| -> bool {
        store.session_by_slug(repo_id, slug).ok().flatten().is_some()
            || git::branch_exists(&repo.root, slug).unwrap_or(true)
            || worktrees.join(slug).exists()
    };
    let slug = match &req.name {
        Some(name) => {
            names::validate(name)?;
            name.clone()
        }
        None => names::generate(taken),
    };
    let branch = slug.clone();
    if !git::is_valid_branch_name(&repo.root, &branch)? {
        return Err(SessionError::InvalidBranch { branch });
    }
    if is_protected(&repo, &config, &branch)? {
        return Err(SessionError::Protected { branch });
    }
    if store.session_by_slug(repo_id, &slug)?.is_some() {
        return Err(SessionError::NameTaken { slug });
    }
    if git::branch_exists(&repo.root, &branch)? {
        return Err(SessionError::BranchExists { branch });
    }
    let path = worktrees.join(&slug);
    if path.exists() {
        return Err(SessionError::PathExists { path });
    }
    let (base_ref, base_commit) = match req.base.as_deref() {
        Some(base) => {
            let commit = git::resolve_commit(&repo.worktree, base)?
                .ok_or_else(|| SessionError::BaseNotFound { base: base.to_owned() })?;
            (base.to_owned(), commit)
        }
        None => {
            let commit = git::resolve_commit(&repo.worktree, "HEAD")?.ok_or(SessionError::NoCommits)?;
            (git::current_branch(&repo.worktree)?.unwrap_or_else(|| "HEAD".to_owned()), commit)
        }
    };
    let agent = agent::resolve(req.agent.as_deref(), req.prompt.as_deref(), &req.env, &req.cwd)?;
    let title = req.title.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    Ok(Plan { repo, repo_id, config, slug, branch, path, base_ref, base_commit, agent, title })
}

/// Whether `branch` is protected: main, master, develop, the repository's
/// default branch, or one listed in `branch.protected`.
///
/// # Errors
/// [`SessionError::Git`].
pub fn is_protected(repo: &Repository, config: &Config, branch: &str) -> Result<bool, SessionError> {
    Ok(ALWAYS_PROTECTED.contains(&branch)
        || config.branch.protected.iter().any(|p| p == branch)
        || git::default_branch(&repo.root)?.as_deref() == Some(branch))
}

/// The folder that holds this repository's worktrees: `worktrees.dir`
/// from the config (relative to the main worktree), else the data dir.
#[must_use]
pub fn worktrees_dir(paths: &Paths, repo: &Repository, config: &Config) -> PathBuf {
    if config.worktrees.dir.is_empty() {
        paths.worktrees_dir(&repo.dir_name())
    } else {
        repo.root.join(&config.worktrees.dir)
    }
}

/// Carries out a [`Plan`]: writes the row, adds the worktree (on a new
/// branch, `--no-track`), and hands the row to `start_host`, which starts
/// the agent. A worktree failure deletes the row again; a host failure
/// keeps the session (its worktree may already matter) as `exited`.
///
/// # Errors
/// [`SessionError::NameTaken`] when another create won the race,
/// [`SessionError::Git`] from `git worktree add`, [`SessionError::Host`].
pub fn create(
    paths: &Paths,
    store: &Store,
    plan: &Plan,
    id: String,
    start_host: impl FnOnce(&Session) -> Result<(), String>,
) -> Result<Session, SessionError> {
    let now = crate::unix_now();
    let mut session = Session {
        id,
        repo_id: plan.repo_id,
        slug: plan.slug.clone(),
        branch: plan.branch.clone(),
        agent: plan.agent.name.clone(),
        command: plan.agent.argv.clone(),
        path: plan.path.clone(),
        base_ref: plan.base_ref.clone(),
        base_commit: plan.base_commit.clone(),
        state: SessionState::Creating,
        exit_code: None,
        host_pid: None,
        agent_pid: None,
        created_at: now,
        updated_at: now,
        archive_ref: None,
        meta: Meta { title: plan.title.clone(), ..Meta::default() },
    };
    store.insert_session(&session).map_err(|e| match e {
        StoreError::SlugTaken { slug } => SessionError::NameTaken { slug },
        e => e.into(),
    })?;
    if let Some(parent) = plan.path.parent() {
        std::fs::create_dir_all(parent)?;
        exclude_if_inside(&plan.repo, parent)?;
    }
    if let Err(e) = git::worktree_add(&plan.repo.root, &plan.path, &plan.branch, &plan.base_commit) {
        store.delete_session(&session.id)?;
        return Err(e.into());
    }
    std::fs::create_dir_all(paths.session_dir(&session.id))?;
    if let Err(message) = start_host(&session) {
        store.set_state(&session.id, SessionState::Exited, Some(127))?;
        return Err(SessionError::Host { message });
    }
    session = store.session(&session.id)?.unwrap_or(session);
    Ok(session)
}

/// Adds a worktrees folder inside the repository to `.git/info/exclude`,
/// so the sessions' checkouts never show as untracked files.
fn exclude_if_inside(repo: &Repository, dir: &Path) -> Result<(), SessionError> {
    let Ok(relative) = dir.strip_prefix(&repo.root) else { return Ok(()) };
    let pattern = format!("/{}/", relative.to_string_lossy());
    let exclude = repo.common_dir.join("info").join("exclude");
    let current = std::fs::read_to_string(&exclude).unwrap_or_default();
    if !current.lines().any(|l| l == pattern) {
        std::fs::create_dir_all(exclude.parent().expect("info/exclude has a parent"))?;
        let sep = if current.is_empty() || current.ends_with('\n') { "" } else { "\n" };
        std::fs::write(&exclude, format!("{current}{sep}{pattern}\n"))?;
    }
    Ok(())
}

/// What removing a session would lose: `None` when nothing, else a
/// phrase like `2 changed files, 1 untracked file and 3 commits not on
/// main or any remote`.
///
/// # Errors
/// [`SessionError::Git`].
pub fn unsaved_work(repo: &Repository, session: &Session) -> Result<Option<String>, SessionError> {
    let mut parts = Vec::new();
    if session.path.is_dir() {
        let status = git::status(&session.path)?;
        if status.changed > 0 {
            parts.push(plural(status.changed, "changed file"));
        }
        if status.untracked > 0 {
            parts.push(plural(status.untracked, "untracked file"));
        }
    }
    if git::branch_exists(&repo.root, &session.branch)? {
        let mut bases = vec![session.base_commit.as_str()];
        if git::resolve_commit(&repo.root, &session.base_ref)?.is_some() {
            bases.push(&session.base_ref);
        }
        let commits = git::unique_commits(&repo.root, &format!("refs/heads/{}", session.branch), &bases)?;
        if !commits.is_empty() {
            parts.push(format!("{} not on {} or any remote", plural(commits.len(), "commit"), session.base_ref));
        }
    }
    Ok(match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => {
            let last = parts.pop().expect("two or more");
            Some(format!("{} and {last}", parts.join(", ")))
        }
    })
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// Stores everything of a session (its branch's commits, plus a snapshot
/// commit of the dirty tree made through a temporary index) under
/// `refs/tandem/archive/<slug>/<unix-time>` and returns that ref.
///
/// # Errors
/// [`SessionError::Git`].
pub fn archive(paths: &Paths, repo: &Repository, session: &Session) -> Result<String, SessionError> {
    let oid = if session.path.is_dir() {
        let message = format!("tandem: snapshot of session {} before removal", session.slug);
        git::snapshot_commit(&session.path, &paths.state_dir, &message)?
    } else {
        git::resolve_commit(&repo.root, &format!("refs/heads/{}", session.branch))?
            .unwrap_or_else(|| session.base_commit.clone())
    };
    let now = crate::unix_now();
    let mut name = format!("refs/tandem/archive/{}/{now}", session.slug);
    let mut n = 1;
    while git::resolve_commit(&repo.root, &name)?.is_some() {
        n += 1;
        name = format!("refs/tandem/archive/{}/{now}-{n}", session.slug);
    }
    git::create_ref(&repo.root, &name, &oid)?;
    Ok(name)
}

/// Removes a session whose agent is no longer running: snapshot if
/// `force` and anything would be lost (else refuse), `git worktree
/// remove`, delete the branch, prune, and mark the row removed.
///
/// # Errors
/// [`SessionError::WouldLoseWork`] without `force`; git and store errors.
pub fn remove(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    session: &Session,
    force: bool,
) -> Result<RemoveReport, SessionError> {
    let unsaved = unsaved_work(repo, session)?;
    let archive_ref = match (&unsaved, force) {
        (Some(what), false) => {
            return Err(SessionError::WouldLoseWork { slug: session.slug.clone(), what: what.clone() });
        }
        (Some(_), true) => Some(archive(paths, repo, session)?),
        (None, _) => None,
    };
    if session.path.is_dir() {
        // After the check (or the snapshot) the tree holds nothing that is
        // not kept; `--force` only lets git delete what we just stored.
        git::worktree_remove(&repo.root, &session.path, archive_ref.is_some())?;
    }
    git::worktree_prune(&repo.root)?;
    if git::branch_exists(&repo.root, &session.branch)? {
        git::delete_branch(&repo.root, &session.branch)?;
    }
    store.mark_removed(&session.id, archive_ref.as_deref())?;
    Ok(RemoveReport {
        slug: session.slug.clone(),
        branch: session.branch.clone(),
        path: session.path.clone(),
        archive_ref,
    })
}
