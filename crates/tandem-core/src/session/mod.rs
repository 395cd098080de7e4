//! Session lifecycle. The supervisor calls these while holding the
//! repository's lock; `tandem list` reads sessions through [`facts`].
//!
//! - Creating ([`plan`], [`create`]) validates everything first (name and
//!   slug ([`slugs`]), branch, protected branches, base ref, agent, hook
//!   approvals), so bad input changes nothing; then it writes the row
//!   (`creating`), makes the worktree, copies `.worktreeinclude` files
//!   ([`mod@include`]), runs setup hooks ([`repo_hooks`]) and has the caller start
//!   the host.
//! - Ending ([`end`]): `rm`, `archive`, `restore` and `gc`. Nothing is lost
//!   without `--force`: uncommitted or untracked files, or commits in
//!   neither the base nor any remote branch, stop a removal, and even a
//!   forced one first stores everything under
//!   `refs/tandem/archive/<slug>/<unix-time>`.
//! - Repair ([`repair`]): what a `kill -9` left half done is finished or
//!   undone by the next supervisor; `tandem doctor` explains and repairs
//!   what was done by hand.

pub mod auto_name;
pub mod end;
pub mod env;
pub mod facts;
pub mod include;
pub mod launch;
pub mod repair;
pub mod repo_hooks;
pub mod slugs;

/// Masking secrets: moved to [`crate::secrets::mask`], named here too.
pub use crate::secrets::mask;

// old path, until supervisor/ and host/ use the new one
pub use crate::conflicts;
// old path, until supervisor/ and host/ use the new one
pub use crate::ship;
// old path, until supervisor/ and host/ use the new one
pub use crate::ship::merge_journal;
// old path, until supervisor/ and host/ use the new one
pub use crate::ship::pull_request as pull;
// old path, until supervisor/ and host/ use the new one
pub use crate::ship::review;
// old path, until supervisor/ and host/ use the new one
pub use crate::tasks::trial as task;
// old path, until supervisor/ and host/ use the new one
pub use auto_name as naming;
// old path, until supervisor/ and host/ use the new one
pub use repo_hooks as hooks;
// old path, until supervisor/ and host/ use the new one
pub use slugs as names;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent::{self, AgentError, AgentSpec};
use crate::config::{Config, ConfigError};
use crate::git::{self, GitError};
use crate::paths::{Paths, PathsError};
use crate::repo::{RepoError, Repository};
use crate::store::{Meta, Session, SessionState, Store, StoreError};

pub use slugs::NameError;

/// Branch names that are never a session's branch, whatever the config.
pub const ALWAYS_PROTECTED: &[&str] = &["main", "master", "develop"];

/// Errors from session operations. Each message is one line that says
/// what to do; for some, that part is a hint apart, added at the edge
/// ([`crate::model::error::Kinded`]), so the message states only what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    PrivateGit(#[from] crate::sandbox_git::PrivateGitError),
    /// Hint: pick another name, or `tandem rm` it.
    #[error("a session named `{slug}` already exists in this repository")]
    NameTaken { slug: String },
    /// A name longer than a slug, cut to one a session has (issue 17).
    #[error(
        "session name `{name}` is cut to `{slug}` ({max} characters at most), and a session named `{slug}` already exists; pick a name that differs in its first {max} characters",
        max = slugs::MAX_SLUG_LEN
    )]
    CutNameTaken { name: String, slug: String },
    #[error("--sandbox: {message}")]
    BadSandboxMode { message: String },
    #[error(
        "branch `{branch}` already exists; pick another session name, or delete the branch with `git branch -d {branch}`"
    )]
    BranchExists { branch: String },
    #[error("`{branch}` is not a valid git branch name; use letters, digits, `.`, `_` and `-`")]
    InvalidBranch { branch: String },
    #[error("`{branch}` is a protected branch and never a session's branch; pick another name or branch")]
    Protected { branch: String },
    #[error("branch `{branch}` is checked out in {}; pick another branch, or end that worktree first", path.display())]
    BranchCheckedOut { branch: String, path: PathBuf },
    #[error("this repository has no remote to fetch a pull request from; add one with `git remote add origin URL`")]
    NoRemote,
    #[error("cannot fetch pull request #{n} from {remote} ({why}); check the number and that the remote is reachable")]
    PullRequest { n: u64, remote: String, why: String },
    #[error(
        "this repository's .tandem.toml sets {count} hook command(s) or [env] value(s) you have not approved; review and approve them with `tandem hooks approve`"
    )]
    HooksNotApproved { count: usize },
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error("a review needs an agent that takes a prompt; pass --agent claude, codex or gemini")]
    ReviewNeedsAgent,
    #[error("session `{slug}` is {state}, not archived; `tandem restore` brings back archived sessions only")]
    NotArchived { slug: String, state: &'static str },
    /// Hint: `tandem restore` it first.
    #[error("session `{slug}` is archived")]
    Archived { slug: String },
    #[error("the worktree hook failed: {message}")]
    Hook { message: String },
    #[error("{} already exists; pick another session name, or move that folder away", path.display())]
    PathExists { path: PathBuf },
    #[error(
        "{} is in the way of restoring session `{slug}`; move that folder away, then run `tandem restore {slug}` again", path.display()
    )]
    RestoreBlocked { slug: String, path: PathBuf },
    #[error("base ref `{base}` does not name a commit; pass an existing branch, tag or commit to --base")]
    BaseNotFound { base: String },
    #[error("this repository has no commits yet; make a first commit, then run tandem again")]
    NoCommits,
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// Hint: `tandem list`.
    #[error("no session named `{name}` in this repository")]
    NotFound { name: String },
    /// `what`: the work, e.g. "1 changed file, 2 commits in no other
    /// branch". Hint: commit or push it, or `tandem rm --force`.
    #[error("session `{slug}` has {what}")]
    WouldLoseWork { slug: String, what: String },
    /// The agent did not start ([`launch`]).
    #[error("the agent could not start: {0}")]
    Launch(#[from] launch::LaunchError),
    #[error("session `{slug}`'s worktree {} is missing; `tandem doctor --fix` explains and repairs it", path.display())]
    WorktreeMissing { slug: String, path: std::path::PathBuf },
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
    /// A refusal of another part that builds on sessions (a task's), with
    /// its kind and hints: that part converts its own error into this, so
    /// `session` names nothing of it (no import circle).
    #[error("{}", .0.message)]
    Refused(crate::model::error::Failure),
}

/// How the worktree gets its branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A new branch at this commit (`git worktree add -b`).
    NewBranch { at: String },
    /// The branch exists and is checked out as it is.
    Existing,
}

/// What a new session is asked to be (`tandem new`, `fork`, `review`, a
/// task's trials), as [`plan`] takes it. The supervisor builds it from
/// the wire's `protocol::CreateRequest`, so the lifecycle does not
/// depend on the wire format (issue 18). Names are validated by [`plan`].
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// Where the command ran: finds the repository and resolves `HEAD`.
    pub cwd: PathBuf,
    /// The session's name as typed; `None` lets tandem pick one.
    pub name: Option<String>,
    /// Free-text title.
    pub title: Option<String>,
    /// The agent as named or typed (`claude`, a command line); `None`
    /// for the default.
    pub agent: Option<String>,
    /// The first prompt.
    pub prompt: Option<String>,
    /// `fresh`, `head` or a commit-ish; `None` for `base.default`.
    pub base: Option<String>,
    /// A branch to use as it is (existing) or to create.
    pub branch: Option<String>,
    /// A pull request number to fetch and check out.
    pub from_pr: Option<u64>,
    /// The environment of the command that asked (never stored).
    pub env: Vec<(String, String)>,
    /// The id of the session this one reviews (`tandem review`).
    pub review_of: Option<String>,
    /// The task the new session is a trial of.
    pub task: Option<Trial>,
    /// `--env KEY=VALUE` pairs, and `--env-file` paths (absolute).
    pub vars: Vec<(String, String)>,
    pub env_files: Vec<PathBuf>,
    /// `--sandbox MODE` (`none`, `workspace`, `container`); `None` means
    /// `sandbox.mode`.
    pub sandbox: Option<String>,
}

/// A session's place in its task, as its row records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    /// The task's id.
    pub task_id: String,
    /// 1, 2, …
    pub trial: i64,
    /// The paths its brief gives it.
    pub owned: Vec<String>,
}

/// A validated request to create a session; nothing has changed yet
/// (except, for `--from-pr`, the fetched pull request's ref).
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
    pub start: Start,
    pub agent: AgentSpec,
    /// Free text, from `--title`.
    pub title: Option<String>,
    pub pr_number: Option<u64>,
    /// Whether tandem picked the name (no NAME, `--branch` or
    /// `--from-pr`): the agent may then name it after its first prompt.
    pub auto_named: bool,
    /// The session this one reviews (`tandem review`).
    pub review_of: Option<String>,
    /// The task this session is a trial of.
    pub task: Option<Trial>,
    /// `--env` pairs and `--env-file` paths.
    pub vars: Vec<(String, String)>,
    pub env_files: Vec<PathBuf>,
    /// How its agent is fenced in: `--sandbox`, else `sandbox.mode`.
    pub sandbox: Option<crate::sandbox::Mode>,
    /// Things the user should know (a fallback to HEAD, a failed hook).
    pub notes: Vec<String>,
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

/// [`open_repo`] with the `TANDEM_*` config variables taken from `env`
/// (the environment of the command that asked), not this process's.
///
/// # Errors
/// As [`open_repo`].
pub fn open_repo_env(
    paths: &Paths,
    dir: &Path,
    env: &[(String, String)],
) -> Result<(Repository, Config), SessionError> {
    let repo = Repository::discover(dir)?;
    let lookup = |var: &str| env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
    let config =
        Config::load_with_env(&paths.config_dir.join("config.toml"), Some(&repo.root.join(".tandem.toml")), lookup)?;
    Ok((repo, config))
}

/// The branch prefix `branch.prefix` asks for: `none` → empty, `user` →
/// the slugified git `user.name` (else `$USER` from `env`) plus `/`, any
/// other string as written.
///
/// # Errors
/// [`SessionError::Git`].
pub fn branch_prefix(repo: &Repository, config: &Config, env: &[(String, String)]) -> Result<String, SessionError> {
    Ok(match config.branch.prefix.as_str() {
        "" | "none" => String::new(),
        "user" => {
            let user = git::config_get(&repo.root, "user.name")?
                .or_else(|| env.iter().find(|(k, _)| k == "USER").map(|(_, v)| v.clone()))
                .unwrap_or_default();
            let slug = slugs::slugify(&user);
            if slug.is_empty() { String::new() } else { format!("{slug}/") }
        }
        other => other.to_owned(),
    })
}

/// Validates a request for a new session against the repository (from
/// [`open_repo`] on `req.cwd`) and the store, and resolves the base
/// (fetching for `fresh`, and the pull request for `--from-pr`).
///
/// # Errors
/// A [`SessionError`] naming the first bad input.
pub fn plan(
    paths: &Paths,
    store: &Store,
    repo: Repository,
    config: Config,
    req: &NewSession,
) -> Result<Plan, SessionError> {
    let repo_id = store.upsert_repo(&repo.common_dir, &repo.root)?;
    let worktrees = worktrees_dir(paths, &repo, &config);
    let prefix = branch_prefix(&repo, &config, &req.env)?;
    let slug = match (&req.name, &req.branch, req.from_pr) {
        (Some(name), _, _) => slugs::slug_of(name)?,
        (None, Some(branch), _) => {
            let slug = slugs::slugify(branch);
            if slug.is_empty() {
                return Err(SessionError::InvalidBranch { branch: branch.clone() });
            }
            slug
        }
        (None, None, Some(n)) => format!("pr-{n}"),
        (None, None, None) => slugs::generate(|slug: &str| {
            store.session_by_slug(repo_id, slug).ok().flatten().is_some()
                || git::branch_exists(&repo.root, &format!("{prefix}{slug}")).unwrap_or(true)
                || worktrees.join(slug).exists()
        }),
    };
    let branch = match (&req.branch, req.from_pr) {
        (Some(branch), _) => branch.clone(),
        (None, Some(n)) => format!("{prefix}pr-{n}"),
        (None, None) => format!("{prefix}{slug}"),
    };
    if branch.starts_with('-') || !git::is_valid_branch_name(&repo.root, &branch)? {
        return Err(SessionError::InvalidBranch { branch });
    }
    if is_protected(&repo, &config, &branch)? {
        return Err(SessionError::Protected { branch });
    }
    if store.session_by_slug(repo_id, &slug)?.is_some() {
        return Err(match &req.name {
            Some(name) if slugs::is_cut(name) => SessionError::CutNameTaken { name: name.clone(), slug },
            _ => SessionError::NameTaken { slug },
        });
    }
    let path = worktrees.join(&slug);
    if path.exists() {
        return Err(SessionError::PathExists { path });
    }
    let unapproved = repo_hooks::unapproved(store, &repo, &config)?;
    if !unapproved.is_empty() {
        return Err(SessionError::HooksNotApproved { count: unapproved.len() });
    }
    let agent = agent::resolve(req.agent.as_deref(), req.prompt.as_deref(), &req.env, &req.cwd)?;
    let sandbox = sandbox_of(&config, req.sandbox.as_deref())?;
    let title = req.title.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    let mut notes = Vec::new();
    if let Some(name) = req.name.as_deref().filter(|name| *name != slug) {
        // Issue 17: said, not done silently.
        notes.push(format!("session name `{name}` is used as `{slug}` (lowercase letters, digits and `-`)"));
    }
    let (base_ref, base_commit) = resolve_base(&repo, &config, req.base.as_deref(), &mut notes)?;
    let exists = git::branch_exists(&repo.root, &branch)?;
    let remote_copy = |name: &str| -> Result<Option<String>, SessionError> {
        for remote in git::remotes(&repo.root)? {
            if let Some(oid) = git::resolve_commit(&repo.root, &format!("refs/remotes/{remote}/{name}"))? {
                return Ok(Some(oid));
            }
        }
        Ok(None)
    };
    let fork_point = |tip: &str| -> Result<String, SessionError> {
        Ok(git::merge_base(&repo.root, tip, &base_commit)?.unwrap_or_else(|| base_commit.clone()))
    };
    let (start, session_base) = if let Some(n) = req.from_pr {
        if exists {
            return Err(SessionError::BranchExists { branch });
        }
        let head = fetch_pull_request(&repo, &config, n)?;
        let base = fork_point(&head)?;
        (Start::NewBranch { at: head }, base)
    } else if exists {
        if req.branch.is_none() {
            return Err(SessionError::BranchExists { branch });
        }
        if let Some(path) = git::worktree_of_branch(&repo.root, &branch)? {
            return Err(SessionError::BranchCheckedOut { branch, path });
        }
        let tip = git::resolve_commit(&repo.root, &format!("refs/heads/{branch}"))?
            .ok_or_else(|| SessionError::BranchExists { branch: branch.clone() })?;
        (Start::Existing, fork_point(&tip)?)
    } else if let Some(oid) = req.branch.as_deref().map(remote_copy).transpose()?.flatten() {
        let base = fork_point(&oid)?;
        (Start::NewBranch { at: oid }, base)
    } else {
        (Start::NewBranch { at: base_commit.clone() }, base_commit.clone())
    };
    // A review compares against what the reviewed session compares
    // against, so `tandem diff` of both shows the same changes.
    let (base_ref, session_base) = match req.review_of.as_deref().map(|id| store.session(id)).transpose()?.flatten() {
        Some(reviewed) => (reviewed.base_ref, reviewed.base_commit),
        None => (base_ref, session_base),
    };
    Ok(Plan {
        repo,
        repo_id,
        config,
        slug,
        branch,
        path,
        base_ref,
        base_commit: session_base,
        start,
        agent,
        title,
        pr_number: req.from_pr,
        auto_named: req.name.is_none() && req.branch.is_none() && req.from_pr.is_none(),
        review_of: req.review_of.clone(),
        task: req.task.clone(),
        vars: req.vars.clone(),
        env_files: req.env_files.clone(),
        sandbox,
        notes,
    })
}

/// The sandbox a new session gets: `requested` (`--sandbox`), else
/// `sandbox.mode`; checked here, before anything is made: the mode, its
/// runtime, the network settings, the image.
///
/// # Errors
/// [`SessionError::Sandbox`], or [`SessionError::BadSandboxMode`].
fn sandbox_of(config: &Config, requested: Option<&str>) -> Result<Option<crate::sandbox::Mode>, SessionError> {
    use crate::sandbox::{self, Mode};
    let setting = requested.unwrap_or(&config.sandbox.mode);
    let mode = Mode::parse_setting(setting).map_err(|message| SessionError::BadSandboxMode { message })?;
    if let Some(mode) = mode {
        let checked = sandbox::check(mode, config)?;
        if mode == Mode::Container {
            // Before anything is made: an engine that cannot start a
            // container fails here, with its own error.
            let caps = crate::limits::Caps::from_config(&config.sandbox).map_err(sandbox::SandboxError::from)?;
            sandbox::check_engine(&checked.runtime, &config.sandbox.image, &caps)?;
        }
    }
    Ok(mode)
}

/// The fence of `session`'s every start (agent and hooks), when it is
/// sandboxed: [`launch::fence`], its error as a [`SessionError`].
///
/// # Errors
/// [`SessionError::Sandbox`]: its runtime is gone, or the config's
/// sandbox settings are bad now.
pub fn fence(
    paths: &Paths,
    repo: &Repository,
    config: &Config,
    session: &Session,
    env: &[(String, String)],
    program: Option<&Path>,
) -> Result<Option<crate::sandbox::Fence>, SessionError> {
    launch::fence(paths, repo, config, session, env, program).map_err(|e| match e {
        launch::FenceError::Sandbox(e) => SessionError::Sandbox(e),
        launch::FenceError::Paths(e) => SessionError::Paths(e),
        launch::FenceError::Io(e) => SessionError::Io(e),
        launch::FenceError::PrivateGit(e) => SessionError::PrivateGit(e),
    })
}

/// Brings a sandboxed session's commits and staged files into the
/// repository ([`crate::sandbox_git::sync`]) when its private repository
/// changed since this process last looked; nothing for other sessions.
/// A failure is logged, not returned: what was synced before stays.
pub fn sync_sandboxed(paths: &Paths, repo: &Repository, session: &Session) {
    if session.sandbox.is_none() {
        return;
    }
    if let Err(e) = crate::sandbox_git::sync_if_changed(paths, repo, session) {
        tracing::warn!(session = %session.slug, error = %crate::error_chain(&e), "cannot read the sandbox's work back");
    }
}

/// Resolves `--base` (or `base.default`): `fresh` fetches and takes the
/// remote's default branch, falling back to HEAD with a note; `head` is
/// the current HEAD (named by its branch, or by its commit when detached,
/// with a note); anything else a commit-ish, named as given when it is a
/// branch, remote branch or tag, else by its commit id (a relative name
/// like `HEAD~2` would later resolve elsewhere). Returns `(name, commit)`.
///
/// # Errors
/// [`SessionError::BaseNotFound`], [`SessionError::NoCommits`].
pub fn resolve_base(
    repo: &Repository,
    config: &Config,
    requested: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<(String, String), SessionError> {
    let head = |notes: &mut Vec<String>| -> Result<(String, String), SessionError> {
        let commit = git::resolve_commit(&repo.worktree, "HEAD")?.ok_or(SessionError::NoCommits)?;
        match git::current_branch(&repo.worktree)? {
            Some(branch) => Ok((branch, commit)),
            None => {
                // A detached HEAD names no branch: the base is the commit
                // itself. The word `HEAD` would later name the session's
                // own HEAD (issue 17: `sync` then found nothing to do).
                notes.push(format!("HEAD is detached; the base is commit {}", git::short(&commit)));
                Ok((commit.clone(), commit))
            }
        }
    };
    match requested.unwrap_or(&config.base.default) {
        "head" | "HEAD" => head(notes),
        "fresh" => match fresh_base(repo, config) {
            Ok(found) => Ok(found),
            Err(why) => {
                let (name, commit) = head(notes)?;
                notes.push(format!("{why}; branching from {name} (HEAD) instead"));
                Ok((name, commit))
            }
        },
        base => {
            let commit = git::resolve_commit(&repo.worktree, base)?
                .ok_or_else(|| SessionError::BaseNotFound { base: base.to_owned() })?;
            // A name that moves (a branch, a remote branch, a tag) is kept;
            // anything else (`HEAD~2`, `@{-1}`, an id) would mean something
            // else later or in the session's worktree: the commit is kept.
            // (rev-parse echoes `--end-of-options` itself: the name is the last line.)
            let full = git::read(&repo.worktree, &["rev-parse", "--symbolic-full-name", "--end-of-options", base])
                .unwrap_or_default();
            let full = full.lines().last().unwrap_or_default();
            if full.starts_with("refs/") && !full.starts_with("refs/tandem/") {
                // By git's short name for it: `@{-1}` or `@{upstream}`
                // name a branch by what this checkout did or tracks.
                let short = git::read(&repo.worktree, &["rev-parse", "--abbrev-ref", "--end-of-options", base])
                    .unwrap_or_default();
                let short = short.lines().last().filter(|s| !s.is_empty() && *s != "--end-of-options");
                Ok((short.unwrap_or(base).to_owned(), commit))
            } else {
                Ok((commit.clone(), commit))
            }
        }
    }
}

/// Fetches the first remote's default branch and returns
/// `(remote/branch, commit)`, or why it could not.
fn fresh_base(repo: &Repository, config: &Config) -> Result<(String, String), String> {
    let timeout = Duration::from_millis(config.base.fetch_timeout_ms);
    let remote = git::remotes(&repo.root).map_err(|e| e.to_string())?.into_iter().next();
    let Some(remote) = remote else { return Err("no remote to fetch from".to_owned()) };
    let mut branch = git::remote_head(&repo.root, &remote).map_err(|e| e.to_string())?;
    if branch.is_none() {
        // Not cloned: ask the remote once; git remembers the answer.
        git::run_with_timeout(&repo.root, &["remote", "set-head", &remote, "--auto"], timeout)
            .map_err(|why| format!("cannot reach {remote} ({why})"))?;
        branch = git::remote_head(&repo.root, &remote).map_err(|e| e.to_string())?;
    }
    let Some(branch) = branch else { return Err(format!("{remote} has no default branch")) };
    git::run_with_timeout(
        &repo.root,
        &["fetch", "--quiet", "--no-tags", "--no-auto-maintenance", &remote, &branch],
        timeout,
    )
    .map_err(|why| format!("cannot fetch {remote} ({why})"))?;
    let name = format!("{remote}/{branch}");
    let commit = git::resolve_commit(&repo.root, &format!("refs/remotes/{name}"))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{name} is not there after fetching"))?;
    Ok((name, commit))
}

/// Fetches `refs/pull/N/head` from the first remote into
/// `refs/remotes/<remote>/pull/N` (GitHub's and Gitea's layout) and
/// returns its commit.
fn fetch_pull_request(repo: &Repository, config: &Config, n: u64) -> Result<String, SessionError> {
    let remote = git::remotes(&repo.root)?.into_iter().next().ok_or(SessionError::NoRemote)?;
    let tracking = format!("refs/remotes/{remote}/pull/{n}");
    let refspec = format!("+refs/pull/{n}/head:{tracking}");
    let timeout = Duration::from_millis(config.base.fetch_timeout_ms);
    git::run_with_timeout(
        &repo.root,
        &["fetch", "--quiet", "--no-tags", "--no-auto-maintenance", &remote, &refspec],
        timeout,
    )
    .map_err(|why| SessionError::PullRequest { n, remote: remote.clone(), why })?;
    git::resolve_commit(&repo.root, &tracking)?.ok_or(SessionError::PullRequest {
        n,
        remote,
        why: "nothing was fetched".to_owned(),
    })
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

/// Carries out a [`Plan`]: writes the row, makes the worktree (`git
/// worktree add`, or the `hooks.worktree_create` command), copies the
/// `.worktreeinclude` files, runs the setup hooks, and hands the row to
/// `start_agent`, which readies the worktree and starts the agent
/// ([`launch::prepare`], [`launch::Launcher::start`]). A worktree failure
/// undoes everything; a failed copy or hook leaves the session made and
/// adds a note; a launch failure keeps the session (its worktree may
/// already matter) as `exited`. Returns the session and the notes.
///
/// # Errors
/// [`SessionError::NameTaken`] when another create won the race,
/// [`SessionError::Git`] from `git worktree add`, [`SessionError::Hook`],
/// [`SessionError::Launch`].
pub fn create(
    paths: &Paths,
    store: &Store,
    plan: &Plan,
    id: String,
    env: &[(String, String)],
    start_agent: impl FnOnce(&Session) -> Result<(), launch::LaunchError>,
) -> Result<(Session, Vec<String>), SessionError> {
    let now = crate::unix_now();
    let mut notes = plan.notes.clone();
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
        owns_branch: matches!(plan.start, Start::NewBranch { .. }),
        pr_number: plan.pr_number.and_then(|n| i64::try_from(n).ok()),
        included: Vec::new(),
        last_commit: None,
        summary: None,
        archived_at: None,
        pending: None,
        activity: None,
        asking: None,
        agent_session: crate::agent::is_claude(&plan.agent.name).then(crate::agent::claude::new_session_id),
        activity_at: None,
        auto_named: plan.auto_named,
        pr: None,
        review_of: plan.review_of.clone(),
        task_id: plan.task.as_ref().map(|t| t.task_id.clone()),
        trial: plan.task.as_ref().map(|t| t.trial),
        owned: plan.task.as_ref().map(|t| t.owned.clone()).unwrap_or_default(),
        env: plan.vars.clone(),
        env_files: plan.env_files.clone(),
        port: None,
        sandbox: plan.sandbox,
    };
    // Stored with the agent's secrets masked (a prompt in Claude Code's
    // command line, a title); the host still runs the real command.
    let secrets = env::layered(env, &plan.config, &session, &plan.repo.root, None)
        .map(|agent_env| env::secret_values(&agent_env.vars))
        .unwrap_or_default();
    let mut stored = session.clone();
    stored.command = stored.command.iter().map(|a| env::redact(a, &secrets).into_owned()).collect();
    stored.meta.title = stored.meta.title.as_deref().map(|t| env::redact(t, &secrets).into_owned());
    store.insert_session(&stored).map_err(|e| match e {
        StoreError::SlugTaken { slug } => SessionError::NameTaken { slug },
        e => e.into(),
    })?;
    crate::paths::create_private_dir(&paths.session_dir(&session.id))?;
    let hook_env = hook_env(&plan.repo, &session, env);
    match make_worktree(&plan.repo, &plan.config, &session, &plan.start, &hook_env) {
        Ok(path) => {
            crate::fault::point("new.worktree-added");
            if path != session.path {
                store.set_path(&session.id, &path)?;
                session.path = path;
            }
        }
        Err(e) => {
            // The failure to report is the creation's; an undo that fails
            // too is logged (`doctor` finds what it left).
            if let Err(undo) = undo_create(&plan.repo, store, &session) {
                tracing::warn!(error = %undo, "cannot undo a failed creation");
            }
            return Err(e);
        }
    }
    finish_worktree(paths, store, &plan.repo, &plan.config, &mut session, env, &mut notes)?;
    if let Err(e) = start_agent(&session) {
        store.set_state(&session.id, SessionState::Exited, Some(127))?;
        return Err(SessionError::Launch(e));
    }
    session = store.session(&session.id)?.unwrap_or(session);
    Ok((session, notes))
}

/// After the worktree exists: `.worktreeinclude` copies, the recorded
/// branch tip, setup hooks. Problems become notes.
fn finish_worktree(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    config: &Config,
    session: &mut Session,
    env: &[(String, String)],
    notes: &mut Vec<String>,
) -> Result<(), SessionError> {
    session.included = match include::copy_included(&repo.root, &session.path) {
        Ok(copied) => copied.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
        Err(e) => {
            notes.push(format!("files from .worktreeinclude were not copied: {e}"));
            Vec::new()
        }
    };
    if !session.included.is_empty() {
        notes.push(format!("copied {} from .worktreeinclude", plural(session.included.len(), "file")));
    }
    let tip = git::resolve_commit(&repo.root, &format!("refs/heads/{}", session.branch))?
        .unwrap_or_else(|| session.base_commit.clone());
    store.set_created(&session.id, &session.included, &tip)?;
    let hook_env = hook_env(repo, session, env);
    let log = paths.session_dir(&session.id).join("hooks.log");
    for hook in repo_hooks::all(repo, config).into_iter().filter(|h| h.kind == "setup") {
        if !repo_hooks::may_run(store, &hook)? {
            notes.push(format!("setup hook `{}` is not approved; skipped (`tandem hooks approve`)", hook.command));
            continue;
        }
        let fence = match fence(paths, repo, config, session, env, None) {
            Ok(fence) => fence,
            Err(e) => {
                notes.push(format!("setup hooks were not run: {e}"));
                break;
            }
        };
        if let Err(why) = repo_hooks::run("setup", &hook.command, &session.path, &hook_env, &log, fence.as_ref()) {
            notes.push(format!("{why}; the session was created anyway"));
            break;
        }
    }
    Ok(())
}

fn hook_env(repo: &Repository, session: &Session, env: &[(String, String)]) -> repo_hooks::HookEnv {
    repo_hooks::HookEnv {
        session: session.slug.clone(),
        branch: session.branch.clone(),
        worktree: session.path.clone(),
        base: session.base_ref.clone(),
        base_commit: session.base_commit.clone(),
        repo: repo.root.clone(),
        inherited: env.to_vec(),
    }
}

/// Makes the worktree and returns its path.
fn make_worktree(
    repo: &Repository,
    config: &Config,
    session: &Session,
    start: &Start,
    hook_env: &repo_hooks::HookEnv,
) -> Result<PathBuf, SessionError> {
    if let Some(parent) = session.path.parent() {
        std::fs::create_dir_all(parent)?;
        exclude_if_inside(repo, parent)?;
    }
    let command = config.hooks.worktree_create.trim();
    if !command.is_empty() {
        let printed = repo_hooks::run_replacement("worktree_create", command, &repo.root, hook_env)
            .map_err(|message| SessionError::Hook { message })?;
        let path = PathBuf::from(&printed);
        if !path.is_absolute() || !path.is_dir() {
            return Err(SessionError::Hook {
                message: format!("worktree_create printed `{printed}`, not the absolute path of a folder it made"),
            });
        }
        return Ok(path);
    }
    match start {
        Start::NewBranch { at } => git::worktree_add(&repo.root, &session.path, &session.branch, at)?,
        Start::Existing => git::worktree_add_existing(&repo.root, &session.path, &session.branch)?,
    }
    Ok(session.path.clone())
}

/// Undoes a creation that did not finish: the half-made worktree (git
/// marks it locked, `initializing`, when `worktree add` was cut short),
/// the branch if tandem made it and nothing was committed on it, the row.
fn undo_create(repo: &Repository, store: &Store, session: &Session) -> Result<(), SessionError> {
    let listed = git::worktree_list(&repo.root)?.into_iter().find(|w| same_path(&w.path, &session.path));
    if listed.is_some() {
        // Only a checkout tandem itself began; nothing of the user's is in it.
        repair::discard_checkout(repo, &session.path)?;
    }
    if session.path.is_dir() && listed.is_none() && dir_is_empty(&session.path) {
        let _ = std::fs::remove_dir(&session.path);
    }
    git::worktree_prune(&repo.root)?;
    if session.owns_branch
        && git::resolve_commit(&repo.root, &format!("refs/heads/{}", session.branch))?.is_some_and(|tip| {
            git::unique_commits(&repo.root, &tip, &[&session.base_commit]).is_ok_and(|c| c.is_empty())
                && git::worktree_of_branch(&repo.root, &session.branch).is_ok_and(|w| w.is_none())
        })
    {
        git::delete_branch(&repo.root, &session.branch)?;
    }
    store.delete_session(&session.id)?;
    Ok(())
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Whether two paths name the same place (comparing canonical forms when
/// both exist).
#[must_use]
pub fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
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
/// main or any remote`. Counts what only the worktree holds
/// ([`worktree_only_work`]) and the commits only its branch holds.
///
/// # Errors
/// [`SessionError::Git`].
pub fn unsaved_work(repo: &Repository, session: &Session) -> Result<Option<String>, SessionError> {
    unsaved_work_given(repo, session, None, None)
}

/// [`unsaved_work`] with what the supervisor's caches already know, so
/// less git runs: the worktree's `(changed, untracked)` counts (inotify
/// keeps them exact; no `git status`), and the commit the branch points
/// at (no `git rev-list` when that is still the base commit, as nothing
/// can then be unique to the branch).
///
/// # Errors
/// [`SessionError::Git`].
pub fn unsaved_work_given(
    repo: &Repository,
    session: &Session,
    counts: Option<(u32, u32)>,
    tip: Option<&str>,
) -> Result<Option<String>, SessionError> {
    let mut parts = worktree_only_work(repo, session, counts)?;
    // Not tandem's branch: removing the session keeps it. One rev-list;
    // a branch or base that no longer exists counts as nothing.
    if session.owns_branch && tip != Some(session.base_commit.as_str()) {
        let bases = bases(session);
        let bases: Vec<&str> = bases.iter().map(String::as_str).collect();
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

/// What a session's commits are measured against: its base commit, its
/// base ref (unless that is the bare word `HEAD` an older tandem stored
/// for a detached base, which would name the worktree's own `HEAD`) and,
/// for a review session, the reviewed state it started at (only what the
/// reviewer added after that is its own).
fn bases(session: &Session) -> Vec<String> {
    let mut bases = vec![session.base_commit.clone()];
    if session.base_ref != "HEAD" {
        bases.push(session.base_ref.clone());
    }
    if session.review_of.is_some() {
        bases.push(crate::ship::review::start_ref(&session.id));
    }
    bases
}

/// What only the session's worktree holds, each as a phrase (empty when
/// nothing): changed and untracked files (`counts` when the caller knows
/// them, else `git status`); commits on a detached `HEAD` that neither
/// the branch, the base nor a remote has (an agent's `git checkout
/// --detach`, or a rebase under way); an operation git has begun and not
/// finished (rebase, merge, cherry-pick, revert, bisect: its state lives
/// in the worktree's git folder); and `.worktreeinclude` files changed
/// since they were copied in ([`include::changed`]). Removing or
/// archiving the worktree would lose each of them, so either refuses or
/// snapshots ([`snapshot`]) when any is there (issue 17).
///
/// # Errors
/// [`SessionError::Git`].
pub fn worktree_only_work(
    repo: &Repository,
    session: &Session,
    counts: Option<(u32, u32)>,
) -> Result<Vec<String>, SessionError> {
    let mut parts = Vec::new();
    if !(session.path.is_dir() && session.path.join(".git").exists()) {
        return Ok(parts);
    }
    let (changed, untracked) = match counts {
        Some((changed, untracked)) => (changed as usize, untracked as usize),
        None => {
            let status = git::status(&session.path)?;
            (status.changed, status.untracked)
        }
    };
    if changed > 0 {
        parts.push(plural(changed, "changed file"));
    }
    if untracked > 0 {
        parts.push(plural(untracked, "untracked file"));
    }
    if git::current_branch(&session.path)?.is_none()
        && let Some(head) = git::resolve_commit(&session.path, "HEAD")?
    {
        let mut bases = bases(session);
        bases.push(format!("refs/heads/{}", session.branch));
        let bases: Vec<&str> = bases.iter().map(String::as_str).collect();
        // In the repository, where a base was named: a relative one an
        // older tandem stored (`@`, `HEAD~1`) would in the worktree name
        // the very HEAD being measured.
        let commits = git::unique_commits(&repo.root, &head, &bases)?;
        if !commits.is_empty() {
            parts.push(format!("{} on a detached HEAD", plural(commits.len(), "commit")));
        }
    }
    if let Some(what) = git::operation_in_progress(&session.path)? {
        parts.push(format!("a {what} in progress"));
    }
    let included = include::changed(&repo.worktree, &session.path, &session.included);
    if !included.is_empty() {
        // A few names: an agent's folder of thousands would make one huge line.
        let mut names: Vec<_> = included.iter().take(3).map(|p| p.to_string_lossy()).collect();
        if included.len() > names.len() {
            names.push("…".into());
        }
        parts.push(format!("{} ({})", plural(included.len(), "changed included file"), names.join(", ")));
    }
    Ok(parts)
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// Stores everything of a session under
/// `refs/tandem/archive/<slug>/<unix-time>-<owner tag>` and returns that
/// ref: a snapshot commit of the whole worktree made through a temporary
/// index ([`git::snapshot_commit`]: its parents keep `HEAD`, the index as
/// the agent left it and the branch's tip when `HEAD` is elsewhere), with
/// the changed `.worktreeinclude` files added to its tree; or, with the
/// worktree gone, the branch's tip. The owner tag
/// ([`Paths::owner_tag`]) says which state folder made it.
///
/// # Errors
/// [`SessionError::Git`], and I/O errors making the owner tag.
pub fn snapshot(paths: &Paths, repo: &Repository, session: &Session) -> Result<String, SessionError> {
    let tip = git::resolve_commit(&repo.root, &format!("refs/heads/{}", session.branch))?;
    let oid = if session.path.is_dir() {
        let message = format!("tandem: snapshot of session {} before removal", session.slug);
        let included = include::changed(&repo.worktree, &session.path, &session.included);
        git::snapshot_commit_with(&session.path, &paths.state_dir, &message, tip.as_slice(), &included)?
    } else {
        tip.unwrap_or_else(|| session.base_commit.clone())
    };
    let now = crate::unix_now();
    let owner = paths.owner_tag()?;
    let mut name = format!("refs/tandem/archive/{}/{now}-{owner}", session.slug);
    let mut n = 1;
    while git::resolve_commit(&repo.root, &name)?.is_some() {
        n += 1;
        name = format!("refs/tandem/archive/{}/{now}-{n}-{owner}", session.slug);
    }
    git::create_ref(&repo.root, &name, &oid)?;
    Ok(name)
}
