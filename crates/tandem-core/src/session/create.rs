//! Creating a session from a [`Plan`]: the row, the worktree, the
//! `.worktreeinclude` copies, the setup hooks, then the caller's launch
//! ([`create()`]); a creation cut short is undone ([`undo_create`]).

use std::path::{Path, PathBuf};

use super::{Plan, SessionError, Start, env, fence, include, launch, plural, repair, repo_hooks, same_path};
use crate::config::Config;
use crate::git;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::{Meta, Session, SessionState, Store, StoreError};

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
    files: &[env::EnvFile],
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
        creator: plan.creator.clone(),
    };
    // Stored with the agent's secrets masked (a prompt in Claude Code's
    // command line, a title); the host still runs the real command.
    let secrets = env::secret_values(&env::layered(env, &plan.config, &session, files, &plan.repo.root, None).vars);
    let mut stored = session.clone();
    stored.command = stored.command.iter().map(|a| env::redact(a, &secrets).into_owned()).collect();
    stored.meta.title = stored.meta.title.as_deref().map(|t| env::redact(t, &secrets).into_owned());
    // What `respawn` and `fork` give its agent again (issue 19): never a
    // secret's value, not even one given with `--env`.
    let files_read: Vec<_> = files.iter().map(|f| (f.path.clone(), f.vars.clone())).collect();
    let mut recorded = env::RecordedEnv::split(env, &files_read).0;
    stored.env = recorded.keep_out(&session.env);
    store.insert_session(&stored).map_err(|e| match e {
        StoreError::SlugTaken { slug } => SessionError::NameTaken { slug },
        e => e.into(),
    })?;
    store.set_recorded_env(&session.id, &recorded)?;
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
pub(super) fn finish_worktree(
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

pub(super) fn hook_env(repo: &Repository, session: &Session, env: &[(String, String)]) -> repo_hooks::HookEnv {
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
    if super::pool::size(config) > 0
        && let Some(worktrees) = session.path.parent()
    {
        match super::pool::take(repo, worktrees, &session.path, &session.branch, start)? {
            super::pool::Taken::Taken { from } => {
                tracing::info!(session = %session.slug, from = %from.display(), "took a pooled worktree");
                return Ok(session.path.clone());
            }
            super::pool::Taken::Missed { why } => {
                tracing::info!(session = %session.slug, why, "no pooled worktree; git worktree add");
            }
        }
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
pub(super) fn undo_create(repo: &Repository, store: &Store, session: &Session) -> Result<(), SessionError> {
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

/// Adds a worktrees folder inside the repository to `.git/info/exclude`,
/// so the sessions' checkouts never show as untracked files.
pub(super) fn exclude_if_inside(repo: &Repository, dir: &Path) -> Result<(), SessionError> {
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
