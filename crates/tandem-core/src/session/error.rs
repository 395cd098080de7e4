//! [`SessionError`]: every way a session operation fails, one variant
//! per cause with its facts; hints are added at the edge
//! ([`crate::model::error::Kinded`]).

use std::path::PathBuf;

use super::env::EnvError;
use super::launch::LaunchError;
use super::slugs::{self, NameError};
use crate::agent::AgentError;
use crate::config::ConfigError;
use crate::git::GitError;
use crate::paths::PathsError;
use crate::repo::RepoError;
use crate::store::StoreError;

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
    Env(#[from] EnvError),
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
    /// `tandem rename` to the name the session has.
    #[error("session `{slug}` is already called `{slug}`")]
    RenameSame { slug: String },
    /// `tandem rename` to a name that finds another session (its name,
    /// an old name or its branch). Hint: pick another.
    #[error("`{name}` already finds session `{by}` (its name, an old name or its branch)")]
    RenameTaken { name: String, by: String },
    /// `tandem rename` of a session whose branch is pushed (an upstream,
    /// or on a remote), without `--branch`.
    #[error(
        "session `{slug}`'s branch `{branch}` is pushed (it has an upstream or is on a remote), so it keeps its name"
    )]
    BranchPushed { branch: String, slug: String, to: String },
    /// A name that finds no single session ([`super::lookup`]).
    #[error(transparent)]
    Lookup(#[from] super::lookup::LookupError),
    /// `what`: the work, e.g. "1 changed file, 2 commits in no other
    /// branch". Hint: commit or push it, or `tandem rm --force`.
    #[error("session `{slug}` has {what}")]
    WouldLoseWork { slug: String, what: String },
    /// The agent did not start ([`super::launch`]).
    #[error("the agent could not start: {0}")]
    Launch(#[from] LaunchError),
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
