//! Planning a new session: the repository and its config, the name,
//! slug and branch, protected branches, the base ref (fetched for
//! `fresh`), a pull request to check out, the agent and the sandbox, and
//! the hook approvals, all checked before anything is made ([`plan()`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{SessionError, repo_hooks, slugs};
use crate::agent::{self, AgentSpec};
use crate::config::Config;
use crate::git;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::Store;

/// Branch names that are never a session's branch, whatever the config.
pub use crate::git::ALWAYS_PROTECTED;

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
    /// The id of the session whose agent asks for this one.
    pub creator: Option<String>,
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
    /// The id of the session whose agent asked for this one.
    pub creator: Option<String>,
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
    // The default agent fell back to a shell: a prompt must never be
    // typed into a shell the user did not ask for, and the fallback is
    // said, not done silently (issue 19).
    let fell_back = req.agent.is_none() && agent.name == "shell";
    if fell_back && req.prompt.is_some() {
        return Err(SessionError::PromptNeedsAgent);
    }
    let sandbox = sandbox_of(paths, &repo, &config, req)?;
    let title = req.title.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    let mut notes = Vec::new();
    if fell_back {
        notes.push("`claude` is not on PATH, so this session runs a shell; name an agent with --agent".to_owned());
    }
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
        creator: req.creator.clone(),
        notes,
    })
}

/// The sandbox a new session gets: `requested` (`--sandbox`), else
/// `sandbox.mode`; checked here, before anything is made: the mode, its
/// runtime, the network settings, the image, the writable folders.
///
/// # Errors
/// [`SessionError::Sandbox`], or [`SessionError::BadSandboxMode`].
fn sandbox_of(
    paths: &Paths,
    repo: &Repository,
    config: &Config,
    req: &NewSession,
) -> Result<Option<crate::sandbox::Mode>, SessionError> {
    use crate::sandbox::{self, Mode};
    let setting = req.sandbox.as_deref().unwrap_or(&config.sandbox.mode);
    let mode = Mode::parse_setting(setting).map_err(|message| SessionError::BadSandboxMode { message })?;
    if let Some(mode) = mode {
        let checked = sandbox::check(mode, config)?;
        sandbox::check_writable(paths, repo, config, &req.env)?;
        if mode == Mode::Container {
            // Before anything is made: an engine that cannot start a
            // container fails here, with its own error.
            let caps = crate::limits::Caps::from_config(&config.sandbox).map_err(sandbox::SandboxError::from)?;
            sandbox::check_engine(&checked.runtime, &config.sandbox.image, &caps)?;
        }
    }
    Ok(mode)
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
            .map_err(|why| format!("cannot reach {remote} ({})", waited(why, timeout)))?;
        branch = git::remote_head(&repo.root, &remote).map_err(|e| e.to_string())?;
    }
    let Some(branch) = branch else { return Err(format!("{remote} has no default branch")) };
    git::run_with_timeout(
        &repo.root,
        &["fetch", "--quiet", "--no-tags", "--no-auto-maintenance", &remote, &branch],
        timeout,
    )
    .map_err(|why| format!("cannot fetch {remote} ({})", waited(why, timeout)))?;
    let name = format!("{remote}/{branch}");
    let commit = git::resolve_commit(&repo.root, &format!("refs/remotes/{name}"))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{name} is not there after fetching"))?;
    Ok((name, commit))
}

/// Why a fetch failed, in words: a timeout says how long was waited and
/// which setting changes it.
fn waited(why: String, timeout: Duration) -> String {
    if why.starts_with("timed out") {
        let secs = timeout.as_secs_f64();
        format!("no answer in {secs:.0} s; `base.fetch_timeout_ms` sets how long to wait")
    } else {
        why
    }
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
    Ok(git::is_protected(&repo.root, &config.branch.protected, branch)?)
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
