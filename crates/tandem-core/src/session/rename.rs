//! `tandem rename OLD NEW`: a session's name, its folder and its branch
//! follow the new name, and the old name stays an alias
//! ([`crate::store::Store::rename_session`], found by [`super::lookup`]).
//!
//! The folder is moved (`git worktree move`) only while no agent runs in
//! it, and the branch is renamed (`git branch -m`) only when it is
//! tandem's and pushed nowhere (no upstream, on no remote), unless the
//! user asks for it with `--branch`. What is kept is said in a note.

use super::{SessionError, is_protected, slugs};
use crate::config::Config;
use crate::git;
use crate::repo::Repository;
use crate::store::{EventKind, NewEvent, Renaming, Session, SessionState, Store};

/// Renames `session` to `to` (see the module doc). `agent_runs`: its
/// agent (or host) is up, so its folder stays. `branch`: rename a pushed
/// branch too. Answers the session as renamed and notes on what was
/// kept. The caller holds the repository's lock; bad input changes
/// nothing.
///
/// # Errors
/// [`SessionError::Name`], [`SessionError::RenameSame`],
/// [`SessionError::RenameTaken`], [`SessionError::BranchPushed`],
/// [`SessionError::BranchExists`], [`SessionError::Protected`]; git and
/// store errors (what was done is undone).
pub fn rename(
    store: &Store,
    repo: &Repository,
    config: &Config,
    session: &Session,
    to: &str,
    branch: bool,
    agent_runs: bool,
) -> Result<(Session, Vec<String>), SessionError> {
    let slug = slugs::slug_of(to)?;
    let mut notes = Vec::new();
    if slug != to {
        notes.push(format!("session name `{to}` is used as `{slug}` (lowercase letters, digits and `-`)"));
    }
    // The same name again: only the folder left behind while the agent
    // ran can still follow.
    let folder_behind = session.path.file_name().is_some_and(|f| *f != *slug) && !agent_runs;
    if slug == session.slug && !folder_behind {
        return Err(SessionError::RenameSame { slug });
    }
    if let Some(by) = taken_by(store, session, &slug)? {
        return Err(SessionError::RenameTaken { name: slug, by });
    }
    // The branch: the same prefix, the new name.
    let new_branch = match session.branch.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{slug}"),
        None => slug.clone(),
    };
    let rename_branch = if new_branch == session.branch {
        false
    } else if !session.owns_branch {
        notes.push(format!("branch `{}` is not tandem's, so it keeps its name", session.branch));
        false
    } else if pushed(repo, &session.branch)? && !branch {
        return Err(SessionError::BranchPushed {
            branch: session.branch.clone(),
            slug: session.slug.clone(),
            to: slug,
        });
    } else {
        true
    };
    if rename_branch {
        if is_protected(repo, config, &new_branch)? {
            return Err(SessionError::Protected { branch: new_branch });
        }
        if git::branch_exists(&repo.root, &new_branch)? {
            return Err(SessionError::BranchExists { branch: new_branch });
        }
    }
    // The folder: moved unless the agent runs in it.
    let new_path = session.path.parent().map_or_else(|| session.path.clone(), |p| p.join(&slug));
    let present = session.path.exists();
    let move_folder = if !present {
        // Archived (or missing): the next restore makes it at the new place.
        session.state == SessionState::Archived && !new_path.exists()
    } else if agent_runs {
        notes.push(format!(
            "the folder {} keeps its name: the agent runs in it; to move it, stop the agent (`tandem stop {slug}`), then run `tandem rename {slug} {slug}`",
            session.path.display()
        ));
        false
    } else if session.sandbox.is_some() {
        notes.push(format!("the folder {} keeps its name: the session is sandboxed", session.path.display()));
        false
    } else if new_path.exists() {
        notes.push(format!(
            "the folder {} keeps its name: {} is in the way",
            session.path.display(),
            new_path.display()
        ));
        false
    } else {
        true
    };
    let branch_to = if rename_branch { new_branch.as_str() } else { session.branch.as_str() };
    let path_to = if move_folder { new_path.as_path() } else { session.path.as_path() };
    if rename_branch {
        git::rename_branch(&repo.root, &session.branch, branch_to)?;
    }
    let undo_branch = || {
        if rename_branch && let Err(e) = git::rename_branch(&repo.root, branch_to, &session.branch) {
            tracing::warn!(error = %e, "giving the branch its name back failed");
        }
    };
    if move_folder
        && present
        && let Err(e) = git::worktree_move(&repo.root, &session.path, path_to)
    {
        undo_branch();
        return Err(e.into());
    }
    let renamed = store.rename_session(&session.id, Renaming { slug: &slug, branch: branch_to, path: path_to });
    if let Err(e) = renamed {
        if move_folder
            && present
            && let Err(e) = git::worktree_move(&repo.root, path_to, &session.path)
        {
            tracing::warn!(error = %e, "moving the folder back failed");
        }
        undo_branch();
        return Err(e.into());
    }
    let mut text = if slug == session.slug {
        format!("folder moved to {}", path_to.display())
    } else {
        format!("renamed from `{}` to `{slug}`", session.slug)
    };
    if rename_branch {
        text.push_str(&format!(" (branch {branch_to})"));
    }
    store.add_events(&[NewEvent {
        session_id: &session.id,
        kind: EventKind::State,
        text,
        data: None,
        indexed: true,
    }])?;
    let session = store.session(&session.id)?.ok_or_else(|| SessionError::NotFound { name: slug.clone() })?;
    Ok((session, notes))
}

/// Whether `branch` is pushed: it has an upstream, or a remote has a
/// branch of that name.
fn pushed(repo: &Repository, branch: &str) -> Result<bool, SessionError> {
    if git::config_get(&repo.root, &format!("branch.{branch}.remote"))?.is_some() {
        return Ok(true);
    }
    Ok(git::remotes(&repo.root)?.iter().any(|remote| {
        git::resolve_commit(&repo.root, &format!("refs/remotes/{remote}/{branch}")).ok().flatten().is_some()
    }))
}

/// The session other than `session` that `name` already finds by its
/// name, an old name or its branch.
fn taken_by(store: &Store, session: &Session, name: &str) -> Result<Option<String>, SessionError> {
    if let Some(other) = store.session_by_slug(session.repo_id, name)?
        && other.id != session.id
    {
        return Ok(Some(other.slug));
    }
    let sessions = store.sessions(session.repo_id)?;
    for (alias, id) in store.aliases(session.repo_id)? {
        if alias == name
            && id != session.id
            && let Some(other) = sessions.iter().find(|s| s.id == id)
        {
            return Ok(Some(other.slug.clone()));
        }
    }
    Ok(sessions.iter().find(|s| s.id != session.id && s.branch == name).map(|s| s.slug.clone()))
}
