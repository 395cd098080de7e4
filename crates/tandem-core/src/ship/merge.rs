//! Landing a session's branch on its target (`tandem merge`): which
//! target ([`merge_target`]), and the merge itself ([`merge()`]), journaled
//! first so a killed merge is finished or rolled back
//! ([`super::merge_journal`]).

use std::path::Path;

use super::sync::{SYNC_MARK, keep_strays, mark_reflogs, remote_tracking, save_tip};
use super::{ShipError, worktree};
use crate::git::{self, GitError};
use crate::store::Session;

/// How `merge` lands a session's branch on its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// A merge commit (`git merge --no-ff`).
    Commit,
    /// One commit with all the changes (`git merge --squash`, then a
    /// commit).
    Squash,
    /// The session's commits replayed onto the target, which then moves
    /// forward to them.
    Rebase,
    /// Only when the target is an ancestor (`git merge --ff-only`).
    FastForward,
}

/// The local branch a session merges into by default: its base without
/// the remote (`origin/main` → `main`).
///
/// # Errors
/// Git errors.
pub fn merge_target(session: &Session) -> Result<String, ShipError> {
    let dir = worktree(session)?;
    Ok(match remote_tracking(dir, &session.base_ref)? {
        Some((_, branch)) => branch,
        None => session.base_ref.strip_prefix("refs/heads/").unwrap_or(&session.base_ref).to_owned(),
    })
}

/// Merges the session's branch into `target` (a local branch), in the
/// worktree that has `target` checked out (the main one, usually), or in
/// a temporary worktree when none has. Refuses, changing nothing, when
/// that worktree has uncommitted changes, when the merge would conflict
/// (found first with `git merge-tree`; the files are named), when there
/// is nothing to merge, and while another session's merge into the same
/// place was interrupted. `message` titles a squash commit. `state` is
/// the session's own folder: the merge's journal
/// ([`super::merge_journal`]) is written there before anything changes,
/// so a merge killed at any point is finished or rolled back by the next
/// `merge`, `merge --abort` or `doctor --fix`; a failed merge is rolled
/// back with it at once. Returns the target's new commit.
///
/// # Errors
/// [`ShipError::TargetDirty`], [`ShipError::WouldConflict`],
/// [`ShipError::NothingToMerge`], [`ShipError::NothingToSquash`],
/// [`ShipError::NotFastForward`],
/// [`ShipError::Interrupted`], [`ShipError::State`], git errors.
pub fn merge(
    repo: &Path,
    session: &Session,
    target: &str,
    mode: MergeMode,
    message: &str,
    state: &Path,
) -> Result<String, ShipError> {
    use super::merge_journal::{self, Journal};
    let dir = worktree(session)?;
    let branch = &session.branch;
    let Some(old_target) = git::resolve_commit(repo, &format!("refs/heads/{target}"))? else {
        return Err(ShipError::BadRef { against: target.to_owned() });
    };
    let ahead: u32 = git::read(repo, &["rev-list", "--count", &format!("{target}..{branch}")])?.parse().unwrap_or(0);
    if ahead == 0 {
        return Err(ShipError::NothingToMerge { slug: session.slug.clone(), target: target.to_owned() });
    }
    if mode == MergeMode::FastForward && !git::test(repo, &["merge-base", "--is-ancestor", target, branch])? {
        return Err(ShipError::NotFastForward { slug: session.slug.clone(), target: target.to_owned() });
    }
    let mut check = git::command(repo);
    check.args(["merge-tree", "--write-tree", "--name-only", "--no-messages", target, branch]);
    let out = check.output().map_err(|error| GitError::Spawn { error })?;
    if out.status.code() == Some(1) {
        let text = String::from_utf8_lossy(&out.stdout);
        let files: Vec<String> = text.lines().skip(1).take_while(|l| !l.is_empty()).map(str::to_owned).collect();
        return Err(ShipError::WouldConflict { slug: session.slug.clone(), target: target.to_owned(), files });
    }
    let merged_tree = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned();
    // Commits whose changes add up to nothing (a change and its revert),
    // or that the target already has: a squash would be an empty commit,
    // which `git commit` refuses with no message on stderr (issue 19).
    if mode == MergeMode::Squash && merged_tree == git::read(repo, &["rev-parse", &format!("{old_target}^{{tree}}")])? {
        return Err(ShipError::NothingToSquash { slug: session.slug.clone(), target: target.to_owned() });
    }
    let place = git::worktree_of_branch(repo, target)?;
    // Another session's merge into the same branch, interrupted: its
    // half-done checkout is not the user's uncommitted work.
    if let Some(sessions) = state.parent() {
        let same_repo = |p: &Path| p.canonicalize().ok() == repo.canonicalize().ok();
        if let Some((_, j)) = merge_journal::all(sessions)
            .into_iter()
            .find(|(s, j)| s != state && j.target == target && same_repo(&j.repo))
        {
            if merge_journal::still_running(&j) {
                return Err(ShipError::MergeRunning { slug: j.slug, pid: j.pid });
            }
            return Err(ShipError::Interrupted { slug: j.slug, target: j.target, path: j.place });
        }
    }
    if let Some(path) = &place {
        let status = git::status(path)?;
        if status.changed > 0 {
            return Err(ShipError::TargetDirty {
                branch: target.to_owned(),
                path: path.clone(),
                files: status.changed,
            });
        }
    }
    let scratch = state.join("merge-worktree");
    let journal = Journal {
        session_id: session.id.clone(),
        slug: session.slug.clone(),
        branch: branch.clone(),
        worktree: dir.to_owned(),
        repo: repo.to_owned(),
        target: target.to_owned(),
        place: place.clone().unwrap_or_else(|| scratch.clone()),
        temporary: place.is_none(),
        old_target,
        old_branch: git::read(repo, &["rev-parse", &format!("refs/heads/{branch}")])?,
        result_tree: match mode {
            MergeMode::Rebase => None,
            MergeMode::FastForward => Some(git::read(repo, &["rev-parse", &format!("refs/heads/{branch}^{{tree}}")])?),
            MergeMode::Commit | MergeMode::Squash => Some(merged_tree),
        },
        mode: match mode {
            MergeMode::Commit => "commit",
            MergeMode::Squash => "squash",
            MergeMode::Rebase => "rebase",
            MergeMode::FastForward => "ff",
        }
        .to_owned(),
        pid: std::process::id(),
        pid_start: merge_journal::start_time(std::process::id()),
        started: crate::unix_now(),
    };
    merge_journal::write(state, &journal).map_err(ShipError::State)?;
    crate::fault::point("merge.journaled");
    let place = journal.place.clone();
    let merged = (|| -> Result<(), ShipError> {
        if journal.temporary {
            let _ = std::fs::remove_dir_all(&place);
            git::worktree_add_existing(repo, &place, target)?;
        }
        match mode {
            MergeMode::Commit => {
                git::run(&place, &["merge", "--no-ff", "-m", message, branch])?;
            }
            MergeMode::FastForward => {
                git::run(&place, &["merge", "--ff-only", branch])?;
            }
            MergeMode::Squash => {
                git::run(&place, &["merge", "--squash", branch])?;
                crate::fault::point("merge.squashed");
                git::run(&place, &["commit", "-q", "-m", message])?;
            }
            MergeMode::Rebase => {
                // Replay in the session's worktree (its old tip kept, and
                // what the agent commits meanwhile), then move the target.
                keep_strays(dir, &session.slug, branch, state)?;
                mark_reflogs(dir, branch, state)?;
                save_tip(dir, &session.slug)?;
                git::run(dir, &["rebase", target])?;
                git::run(&place, &["merge", "--ff-only", branch])?;
            }
        }
        Ok(())
    })();
    crate::fault::point("merge.ran");
    if let Err(e) = merged {
        // Put the target, its worktree and the session's back as they
        // were; a failure to do so is the one to report.
        merge_journal::recover(state, &journal, true)?;
        return Err(e);
    }
    let new = git::read(&place, &["rev-parse", "HEAD"])?;
    if journal.temporary {
        git::worktree_remove(repo, &place, false)?;
    }
    let _ = std::fs::remove_file(state.join(SYNC_MARK));
    merge_journal::remove(state);
    Ok(new)
}
