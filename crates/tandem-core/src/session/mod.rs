//! Session lifecycle. The supervisor calls these while holding the
//! repository's lock; `tandem list` reads sessions through [`facts`].
//!
//! - Creating ([`plan()`] in `plan.rs`, [`create()`] in `create.rs`) validates everything first (name and
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
//! - Starting an agent ([`launch`]), its environment ([`mod@env`]), naming
//!   ([`slugs`], [`auto_name`]); [`SessionError`] is in `error.rs`.
//! - Coming back after an idle stop ([`idle_stop`]).
//!
//! Built on sessions, in folders of their own: shipping their work
//! ([`crate::ship`]), conflicts between them ([`crate::conflicts`]), and
//! tasks and trials ([`crate::tasks`]). Besides the old paths kept below
//! until `supervisor/` and `host/` use the new ones, the lifecycle names
//! `ship` twice: a review session's start ref and read-only checkout
//! (`ship::review`, made by [`launch`], dropped by [`end`]) and doctor's
//! recovery of a killed merge (`ship::merge_journal`, in [`repair`]).
//! `ship` names nothing of `session`, so there is no circle.

pub mod auto_name;
mod create;
pub mod end;
pub mod env;
mod error;
pub mod facts;
pub mod idle_stop;
pub mod include;
pub mod launch;
pub mod lookup;
mod plan;
pub mod pool;
pub mod rename;
pub mod repair;
pub mod repo_hooks;
pub mod slugs;

/// Masking secrets: moved to [`crate::secrets::mask`], named here too.
pub use crate::secrets::mask;

use std::path::Path;

use crate::config::Config;
use crate::git;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::Session;

pub use create::create;
use create::{finish_worktree, hook_env, undo_create};
pub use error::SessionError;
pub use plan::{
    ALWAYS_PROTECTED, NewSession, Plan, Start, Trial, branch_prefix, is_protected, open_repo, open_repo_env, plan,
    resolve_base, worktrees_dir,
};
pub use slugs::NameError;

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

/// [`sync_sandboxed`] unless another process or thread is syncing the
/// session or rewriting its worktree right now
/// ([`crate::sandbox_git::Hold`]): what the supervisor's `list` does, so
/// that every row of the agent view is not held up by one session's
/// `tandem sync`; the work comes back with the next list after it.
pub fn sync_sandboxed_unless_busy(paths: &Paths, repo: &Repository, session: &Session) {
    if session.sandbox.is_none() {
        return;
    }
    match crate::sandbox_git::Hold::try_take(paths, &session.id) {
        Ok(Some(_held)) => sync_sandboxed(paths, repo, session),
        Ok(None) => {
            tracing::debug!(session = %session.slug, "no private repository, or another is syncing it; not waiting")
        }
        Err(e) => {
            tracing::warn!(session = %session.slug, error = %crate::error_chain(&e), "cannot read the sandbox's work back")
        }
    }
}

/// Whether two paths name the same place (comparing canonical forms when
/// both exist).
#[must_use]
pub fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
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
