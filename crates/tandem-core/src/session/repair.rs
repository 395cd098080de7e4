//! Crash safety and repair.
//!
//! [`reconcile`] runs when a supervisor starts (the previous one may have
//! been killed mid-operation) and brings every session to a state that
//! needs no explanation: a creation cut short is undone (the half-checked
//! out worktree git left locked as `initializing`, the branch made for
//! it, the row), an archive or removal cut short is finished, and a
//! session whose host died is `lost`.
//!
//! [`doctor`] looks for what the user (or another tool) did by hand: a
//! worktree folder deleted, a branch deleted or switched, a repository
//! moved. It explains each finding and, with `fix`, repairs it with git's
//! own tools (`git worktree prune` / `repair`, a branch recreated at its
//! last known commit). A worktree locked by the user is never pruned.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SessionError, end, open_repo, same_path, undo_create, unsaved_work, worktrees_dir};
use crate::git;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::{Session, SessionState, Store};

/// Brings the store in line with the hosts alive now and finishes or
/// undoes operations cut short. Returns one line per action taken.
///
/// # Errors
/// Store errors; a session whose repository cannot be opened is skipped.
pub fn reconcile(paths: &Paths, store: &Store) -> Result<Vec<String>, SessionError> {
    let mut actions = Vec::new();
    let live = [SessionState::Creating, SessionState::Running, SessionState::Stopped, SessionState::Exited];
    let all = store.sessions_in(&[&live[..], &[SessionState::Lost, SessionState::Archived]].concat())?;
    for session in all {
        let host_alive = session.host_pid.is_some_and(crate::process::is_alive)
            && UnixStream::connect(paths.host_socket(&session.id)).is_ok();
        let repo = || -> Result<(Repository, crate::config::Config), SessionError> {
            let root = store.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
            open_repo(paths, &root)
        };
        if let Some(op) = session.pending.as_deref() {
            if host_alive {
                continue; // its agent still runs: the operation had not begun for real
            }
            let Ok((repo, config)) = repo() else { continue };
            let done = match op {
                "archive" => end::archive(paths, store, &repo, &config, &session, &[]).map(drop),
                "remove-force" | "remove" => {
                    end::remove(paths, store, &repo, &config, &session, op == "remove-force", &[], None)
                        .and_then(|_| end::finish_remove(&repo, store, &session))
                }
                _ => Ok(()),
            };
            match done {
                Ok(()) => actions.push(format!("finished the interrupted {op} of session {}", session.slug)),
                Err(e) => {
                    store.set_pending(&session.id, None)?;
                    actions.push(format!("left session {} as it is: {e}", session.slug));
                }
            }
            continue;
        }
        match session.state {
            SessionState::Creating if !host_alive => {
                let Ok((repo, _)) = repo() else { continue };
                let complete = session.path.is_dir()
                    && git::worktree_list(&repo.root)?
                        .iter()
                        .any(|w| same_path(&w.path, &session.path) && w.locked.is_none());
                if complete && unsaved_work(&repo, &session)?.is_some() {
                    store.set_state(&session.id, SessionState::Stopped, None)?;
                    actions.push(format!("session {} was interrupted while starting; it is stopped", session.slug));
                } else {
                    undo_create(&repo, store, &session)?;
                    actions.push(format!("undid the interrupted creation of session {}", session.slug));
                }
            }
            SessionState::Running if !host_alive => {
                tracing::warn!(session = %session.slug, "host is gone; marking the session lost");
                store.set_state(&session.id, SessionState::Lost, None)?;
                actions.push(format!("session {}'s host is gone; it is lost", session.slug));
            }
            _ => {}
        }
    }
    // Removals answered but not yet pruned.
    for session in store.unfinished_removals()? {
        let root = store.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
        let Ok((repo, _)) = open_repo(paths, &root) else { continue };
        match end::finish_remove(&repo, store, &session) {
            Ok(()) => actions.push(format!("finished removing session {}", session.slug)),
            Err(e) => {
                store.set_pending(&session.id, None)?;
                actions.push(format!("left removed session {}'s branch as it is: {e}", session.slug));
            }
        }
    }
    Ok(actions)
}

/// One thing `tandem doctor` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// The session it concerns, if one.
    pub session: Option<String>,
    /// What is wrong, in a sentence.
    pub problem: String,
    /// What `--fix` does (or did), or why it leaves it.
    pub remedy: String,
    /// Whether it was repaired in this run.
    pub fixed: bool,
}

/// Finds (and with `fix`, repairs) what was done by hand to this
/// repository's sessions.
///
/// # Errors
/// Git and store errors.
pub fn doctor(paths: &Paths, store: &Store, repo: &Repository, fix: bool) -> Result<Vec<Finding>, SessionError> {
    let mut findings = Vec::new();
    let repo_id = store.upsert_repo(&repo.common_dir, &repo.root)?;
    moved_repositories(store, repo, repo_id, fix, &mut findings)?;
    let config = open_repo(paths, &repo.root)?.1;
    let worktrees = git::worktree_list(&repo.root)?;
    for session in store.sessions(repo_id)? {
        if matches!(session.state, SessionState::Archived | SessionState::Removed) {
            continue;
        }
        let mut found = |problem: String, remedy: String, fixed: bool| {
            findings.push(Finding { session: Some(session.slug.clone()), problem, remedy, fixed });
        };
        let listed = worktrees.iter().find(|w| same_path(&w.path, &session.path));
        let branch_ref = format!("refs/heads/{}", session.branch);
        let branch_tip = git::resolve_commit(&repo.root, &branch_ref)?;
        if !session.path.is_dir() {
            if listed.is_some_and(|w| w.locked.is_some()) {
                found(
                    format!("worktree folder {} is gone, and git has it locked", session.path.display()),
                    "left alone: a locked worktree is never pruned; unlock it with `git worktree unlock`".into(),
                    false,
                );
                continue;
            }
            let remedy = format!("prune git's record and check the branch out again at {}", session.path.display());
            let fixed = fix && {
                git::worktree_prune(&repo.root)?;
                if branch_tip.is_none() {
                    let at = session.last_commit.as_deref().unwrap_or(&session.base_commit);
                    git::create_branch(&repo.root, &session.branch, at)?;
                }
                std::fs::create_dir_all(session.path.parent().unwrap_or(Path::new("/")))?;
                git::worktree_add_existing(&repo.root, &session.path, &session.branch)?;
                true
            };
            found(format!("worktree folder {} was deleted by hand", session.path.display()), remedy, fixed);
            continue;
        }
        if listed.is_none() || !session.path.join(".git").exists() {
            let fixed = fix && git::run(&repo.root, &["worktree", "repair", &session.path.to_string_lossy()]).is_ok();
            found(
                format!("{} is no longer linked to the repository", session.path.display()),
                "relink it with `git worktree repair`".into(),
                fixed,
            );
            continue;
        }
        let on = listed.and_then(|w| w.branch.as_deref()).map(|b| b.trim_start_matches("refs/heads/").to_owned());
        if branch_tip.is_none() && on.as_deref() == Some(session.branch.as_str()) {
            let at = session.last_commit.clone().unwrap_or_else(|| session.base_commit.clone());
            let fixed = fix && git::create_branch(&repo.root, &session.branch, &at).is_ok();
            found(
                format!("branch {} was deleted by hand", session.branch),
                format!("recreate it at its last known commit {}", git::short(&at)),
                fixed,
            );
        } else if on.as_deref() != Some(session.branch.as_str()) {
            let what = on.as_deref().map_or_else(|| "a detached HEAD".to_owned(), |b| format!("branch {b}"));
            match on {
                Some(other) if !super::is_protected(repo, &config, &other)? => {
                    let fixed = fix && store.set_branch(&session.id, &other).is_ok();
                    found(
                        format!(
                            "the worktree was switched by hand to {what} (the session's branch is {})",
                            session.branch
                        ),
                        format!("make {other} the session's branch; {} stays as it is", session.branch),
                        fixed,
                    );
                }
                _ => found(
                    format!("the worktree was switched by hand to {what} (the session's branch is {})", session.branch),
                    format!(
                        "left alone; switch back with `git -C {} switch {}`",
                        session.path.display(),
                        session.branch
                    ),
                    false,
                ),
            }
        }
        if let Some(tip) = git::resolve_commit(&repo.root, &branch_ref)? {
            store.set_last_commit(&session.id, &tip)?;
        }
    }
    let trash = end::trash_dir(&worktrees_dir(paths, repo, &config));
    let leftovers = std::fs::read_dir(&trash).map(|d| d.count()).unwrap_or(0);
    if leftovers > 0 {
        let fixed = fix && {
            std::fs::read_dir(&trash).into_iter().flatten().flatten().for_each(|e| end::delete_tree(&e.path()));
            true
        };
        findings.push(Finding {
            session: None,
            problem: format!("{leftovers} removed worktree(s) still in {}", trash.display()),
            remedy: "delete them".into(),
            fixed,
        });
    }
    findings.extend(super::merge_journal::doctor(paths, &repo.root, fix));
    Ok(findings)
}

/// Repositories in the store whose `.git` is gone but whose sessions'
/// worktrees still exist and belong to `repo` once relinked: the
/// repository was moved (here).
fn moved_repositories(
    store: &Store,
    repo: &Repository,
    repo_id: i64,
    fix: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), SessionError> {
    for (old_id, common_dir, root) in store.repos()? {
        if old_id == repo_id || common_dir.exists() {
            continue;
        }
        let sessions: Vec<Session> = store.sessions(old_id)?;
        let paths: Vec<PathBuf> = sessions
            .iter()
            .filter(|s| s.path.is_dir() && crate::repo::admin_dir(&s.path).is_some_and(|g| g.starts_with(&common_dir)))
            .map(|s| s.path.clone())
            .collect();
        if paths.is_empty() || !looks_like(repo, &paths[0], &common_dir) {
            continue;
        }
        let fixed = fix && {
            let mut args = vec!["worktree".to_owned(), "repair".to_owned()];
            args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
            git::run(&repo.root, &args)?;
            store.merge_repo(old_id, repo_id)?;
            true
        };
        findings.push(Finding {
            session: None,
            problem: format!(
                "the repository moved from {} to {}; {} session(s) still point at the old place",
                root.display(),
                repo.root.display(),
                sessions.len()
            ),
            remedy: "relink their worktrees with `git worktree repair` and record the new place".into(),
            fixed,
        });
    }
    Ok(())
}

/// Whether `repo` has an admin folder for the worktree at `path` of the
/// same name as the one under the old common dir.
fn looks_like(repo: &Repository, path: &Path, old_common: &Path) -> bool {
    crate::repo::admin_dir(path)
        .and_then(|g| g.strip_prefix(old_common).ok().map(Path::to_path_buf))
        .is_some_and(|rel| repo.common_dir.join(rel).is_dir())
}
