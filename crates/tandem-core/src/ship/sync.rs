//! Bringing the base's new commits into a session's branch (`sync`, with
//! `--abort`). Every mutation is a git CLI command in the session's
//! worktree; `sync` first records the branch's tip under
//! `refs/tandem/sync/<slug>/<unix time>-<commit>`, so a rebase loses
//! nothing.
//!
//! The agent may go on committing while `sync` rewrites its branch
//! (issue 17, finding 4): a commit lands on the detached `HEAD` of the
//! rebase, or on the branch just before the rebase moves it, and
//! `git rebase --abort` would drop it. `sync` marks where the worktree's
//! reflogs stood when it began (in the session's own folder, out of the
//! agent's reach); after the rebase or merge, and around `--abort`, every
//! commit those reflogs gained that no ref reaches is kept under
//! `refs/tandem/sync/<slug>/<unix time>-<commit>-kept-<owner tag>`.

use std::path::{Path, PathBuf};

use super::{ShipError, worktree};
use crate::git::{self, GitError};
use crate::store::Session;

/// How `sync` brings the base in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Rebase,
    Merge,
}

/// What `sync` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// Nothing new on the base.
    UpToDate { target: String },
    /// `commits` of the base's were brought in; the old tip is kept at
    /// `saved`.
    Done { mode: SyncMode, target: String, commits: u32, saved: String },
    /// Stopped on conflicts in `files` (never empty); the rebase or merge
    /// is left in progress for the user to finish or `--abort`.
    Conflict { mode: SyncMode, target: String, files: Vec<String>, saved: String },
    /// Stopped for another reason than a conflict (`reason`: git's own
    /// line, e.g. the agent's git holding the index lock); left in
    /// progress as for a conflict.
    Stopped { mode: SyncMode, target: String, reason: String, saved: String },
}

/// What `tandem sync` (and the dashboard) says of `outcome`: the line
/// for a sync that is done or had nothing to do, or the error for one
/// that stopped (on conflicts, or as git stopped), naming the files and
/// the way on (`git rebase --continue`, `tandem sync NAME --abort`).
/// The texts are untrusted (ref and file names): escape them to show.
///
/// # Errors
/// The stopped sync's sentence.
pub fn sync_said(session: &Session, outcome: &Synced) -> Result<String, String> {
    let word = |mode: &SyncMode| if *mode == SyncMode::Rebase { "rebase" } else { "merge" };
    match outcome {
        Synced::UpToDate { target } => Ok(format!("{} is up to date with {target}", session.slug)),
        Synced::Done { mode, target, commits, saved } => {
            let how = if *mode == SyncMode::Rebase { "rebased onto" } else { "merged" };
            let commits = if *commits == 1 { "1 new commit".to_owned() } else { format!("{commits} new commits") };
            Ok(format!("{} {how} {target} ({commits}); the previous tip is kept at {saved}", session.slug))
        }
        Synced::Conflict { mode, target, files, .. } => Err(format!(
            "syncing {} with {target} stopped on conflicts in {}; resolve them and `git {} --continue` in {}, or run `tandem sync {} --abort`",
            session.slug,
            files.join(", "),
            word(mode),
            session.path.display(),
            session.slug
        )),
        Synced::Stopped { mode, target, reason, .. } => Err(format!(
            "syncing {} with {target} stopped: {reason}; run `git {} --continue` in {} once that is over, or `tandem sync {} --abort`",
            session.slug,
            word(mode),
            session.path.display(),
            session.slug
        )),
    }
}

/// Brings the base's new commits into the session's branch: fetches a
/// remote-tracking base first (a failure only means the last fetched
/// state is used; `note` says why), then rebases (the default while the
/// branch is on no remote) or merges. Refuses uncommitted changes and a
/// rebase or merge already in progress. `state` is the session's own
/// folder ([`crate::paths::Paths::session_dir`]): the reflog mark lives
/// there, and commits the agent made meanwhile that no ref reaches are
/// kept under `refs/tandem/sync/` (each kept ref gets a line in `note`).
///
/// # Errors
/// [`ShipError::Dirty`], [`ShipError::InProgress`], git errors.
pub fn sync(
    session: &Session,
    mode: Option<SyncMode>,
    fetch_timeout: std::time::Duration,
    state: &Path,
    note: &mut Vec<String>,
) -> Result<Synced, ShipError> {
    let dir = worktree(session)?;
    if in_progress(dir)?.is_some() {
        return Err(ShipError::InProgress { slug: session.slug.clone() });
    }
    let status = git::status(dir)?;
    if status.changed > 0 {
        return Err(ShipError::Dirty { slug: session.slug.clone(), files: status.changed });
    }
    let target = if git::resolve_commit(dir, &session.base_ref)?.is_some() {
        session.base_ref.clone()
    } else {
        return Err(ShipError::BadRef { against: session.base_ref.clone() });
    };
    if let Some((remote, branch)) = remote_tracking(dir, &target)? {
        let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
        if let Err(why) = git::run_with_timeout(dir, &["fetch", "--no-tags", &remote, &refspec], fetch_timeout) {
            note.push(format!("could not fetch {remote} ({why}); syncing with its last fetched state"));
        }
    }
    let behind: u32 = git::read(dir, &["rev-list", "--count", &format!("HEAD..{target}")])?.parse().unwrap_or(0);
    if behind == 0 {
        return Ok(Synced::UpToDate { target });
    }
    let mode = match mode {
        Some(mode) => mode,
        None if on_remote(dir, &session.branch)? => SyncMode::Merge,
        None => SyncMode::Rebase,
    };
    // A sync killed before it kept what the agent committed meanwhile
    // left its mark: keep those first.
    note.extend(kept_notes(&keep_strays(dir, &session.slug, &session.branch, state)?));
    mark_reflogs(dir, &session.branch, state)?;
    let saved = save_tip(dir, &session.slug)?;
    let args: Vec<&str> = match mode {
        SyncMode::Rebase => vec!["rebase", "--no-autostash", &target],
        SyncMode::Merge => vec!["merge", "--no-edit", &target],
    };
    let outcome = git::run(dir, &args);
    crate::fault::point("sync.ran");
    note.extend(kept_notes(&keep_strays(dir, &session.slug, &session.branch, state)?));
    match outcome {
        Ok(_) => {
            let _ = std::fs::remove_file(state.join(SYNC_MARK));
            Ok(Synced::Done { mode, target, commits: behind, saved })
        }
        Err(GitError::Failed { stderr, .. }) if in_progress(dir)?.is_some() => {
            let files = git::read(dir, &["diff", "--name-only", "--diff-filter=U"])?;
            let files: Vec<String> = files.lines().filter(|f| !f.is_empty()).map(str::to_owned).collect();
            if files.is_empty() {
                Ok(Synced::Stopped { mode, target, reason: stop_reason(&stderr), saved })
            } else {
                Ok(Synced::Conflict { mode, target, files, saved })
            }
        }
        // E.g. the agent's commit moved `HEAD` as git began: git gave up.
        Err(GitError::Failed { stderr, .. }) => {
            let _ = std::fs::remove_file(state.join(SYNC_MARK));
            Err(ShipError::SyncFailed { slug: session.slug.clone(), reason: stop_reason(&stderr) })
        }
        Err(e) => Err(e.into()),
    }
}

/// The line of git's stderr that says why it stopped: its first `error:`
/// or `fatal:` line (prefix removed), else its first line that is not a
/// hint or progress (`Rebasing (3/410)`, ended by a carriage return).
fn stop_reason(stderr: &str) -> String {
    let lines = || stderr.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("Rebasing ("));
    lines()
        .find_map(|l| l.strip_prefix("error: ").or_else(|| l.strip_prefix("fatal: ")))
        .or_else(|| lines().find(|l| !l.starts_with("hint:")))
        .unwrap_or("git gave no reason")
        .to_owned()
}

/// The file in the session's own folder recording how many entries the
/// worktree's `HEAD` reflog and its branch's reflog held when a sync (or
/// a rebase of `merge --rebase`) began: `<head entries> <branch entries>`.
pub(super) const SYNC_MARK: &str = "sync-reflog";

/// A reflog's entries, newest first: `(commit, subject)` (`%gs`, e.g.
/// `commit: fix`, `rebase (pick): fix`). A ref with no reflog has none.
fn reflog(dir: &Path, name: &str) -> Vec<(String, String)> {
    git::read(dir, &["reflog", "show", "--format=%H %gs", name, "--"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(oid, what)| (oid.to_owned(), what.to_owned())))
        .collect()
}

/// Writes [`SYNC_MARK`] into `state` (made if missing).
pub(super) fn mark_reflogs(dir: &Path, branch: &str, state: &Path) -> Result<(), ShipError> {
    let head = reflog(dir, "HEAD").len();
    let ours = reflog(dir, &format!("refs/heads/{branch}")).len();
    std::fs::create_dir_all(state).map_err(ShipError::State)?;
    crate::paths::write_private(&state.join(SYNC_MARK), format!("{head} {ours}\n").as_bytes())
        .map_err(ShipError::State)?;
    Ok(())
}

/// Keeps every commit the worktree's `HEAD` and branch reflogs gained
/// since [`mark_reflogs`] (the rebase's own entries aside) that no ref
/// reaches (a worktree's `HEAD` does not count: a rebase's abort moves
/// it), one ref per chain, under
/// `refs/tandem/sync/<slug>/<unix time>-<commit>-kept-<owner tag>`. Returns the refs
/// made; none without a mark.
pub(super) fn keep_strays(dir: &Path, slug: &str, branch: &str, state: &Path) -> Result<Vec<String>, ShipError> {
    let Ok(mark) = std::fs::read_to_string(state.join(SYNC_MARK)) else { return Ok(Vec::new()) };
    let mut counts = mark.split_whitespace().map(|n| n.parse::<usize>().unwrap_or(0));
    let (head_before, branch_before) = (counts.next().unwrap_or(0), counts.next().unwrap_or(0));
    let newer = |entries: Vec<(String, String)>, before: usize| {
        let fresh = entries.len().saturating_sub(before);
        entries.into_iter().take(fresh).filter(|(_, what)| !what.starts_with("rebase")).map(|(oid, _)| oid)
    };
    let mut candidates: Vec<String> = newer(reflog(dir, "HEAD"), head_before).collect();
    candidates.extend(newer(reflog(dir, &format!("refs/heads/{branch}")), branch_before));
    candidates.dedup();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // Commits reachable from the candidates and from no ref, each with its
    // parents: `rev-list --parents C… ^R…`.
    let mut input = candidates.join("\n");
    for tip in git::read(dir, &["for-each-ref", "--format=%(objectname)"])?.lines() {
        input.push_str("\n^");
        input.push_str(tip);
    }
    input.push('\n');
    let mut cmd = git::command(dir);
    cmd.args(["--no-optional-locks", "rev-list", "--parents", "--stdin"]);
    let out = String::from_utf8_lossy(&git::output_with_stdin(cmd, input.as_bytes())?).into_owned();
    let parents: std::collections::HashMap<&str, Vec<&str>> = out
        .lines()
        .filter_map(|l| {
            let mut oids = l.split_whitespace();
            oids.next().map(|c| (c, oids.collect()))
        })
        .collect();
    let mut covered = std::collections::HashSet::new();
    let mut kept = Vec::new();
    // Read once, and only when a commit is to be kept.
    let mut owner: Option<String> = None;
    // Newest first: a later commit keeps the earlier ones below it.
    for candidate in &candidates {
        if !parents.contains_key(candidate.as_str()) || covered.contains(candidate.as_str()) {
            continue;
        }
        let tag = match &owner {
            Some(tag) => tag.clone(),
            None => owner.insert(owner_tag()?).clone(),
        };
        let name = format!("refs/tandem/sync/{slug}/{}-{}-kept-{tag}", crate::unix_now(), git::short(candidate));
        if git::resolve_commit(dir, &name)?.is_none() {
            git::create_ref(dir, &name, candidate)?;
        }
        kept.push(name);
        let mut stack = vec![candidate.as_str()];
        while let Some(c) = stack.pop() {
            if covered.insert(c) {
                stack.extend(parents.get(c).into_iter().flatten().copied().filter(|p| parents.contains_key(p)));
            }
        }
    }
    Ok(kept)
}

/// The notes that tell the user where [`keep_strays`] put commits.
fn kept_notes(kept: &[String]) -> Vec<String> {
    kept.iter().map(|r| format!("a commit made while the branch was being rewritten is kept at {r}")).collect()
}

/// This state folder's owner tag ([`crate::paths::Paths::owner_tag`]),
/// the last part of every ref under `refs/tandem/sync/`, so another state
/// folder's `gc` leaves it alone.
///
/// # Errors
/// [`ShipError::Owner`].
pub(crate) fn owner_tag() -> Result<String, ShipError> {
    crate::paths::Paths::from_env()
        .map_err(|e| e.to_string())
        .and_then(|p| p.owner_tag().map_err(|e| e.to_string()))
        .map_err(|why| ShipError::Owner { why })
}

/// Records the worktree's `HEAD` under
/// `refs/tandem/sync/<slug>/<unix time>-<commit>-<owner tag>` before a
/// rebase rewrites it; returns the ref. Named by time and tip, so a second
/// try of the same tip (after an abort) finds its ref already there; the
/// owner tag ([`crate::paths::Paths::owner_tag`]) keeps another state
/// folder's `gc` off it.
pub(super) fn save_tip(dir: &Path, slug: &str) -> Result<String, ShipError> {
    let head = git::read(dir, &["rev-parse", "HEAD"])?;
    let owner = owner_tag()?;
    let saved = format!("refs/tandem/sync/{slug}/{}-{}-{owner}", crate::unix_now(), git::short(&head));
    if git::resolve_commit(dir, &saved)?.is_none() {
        git::create_ref(dir, &saved, &head)?;
    }
    Ok(saved)
}

/// Ends a `sync` that stopped: `git rebase --abort` or `git merge
/// --abort`, which put the branch and the tree back as they were.
/// Commits made meanwhile (on the rebase's detached `HEAD`, or on the
/// branch) are kept first and again after (see [`sync`]; `state` is the
/// session's own folder). Returns which was aborted and the refs kept.
///
/// # Errors
/// [`ShipError::NothingToAbort`], git errors (nothing aborted when
/// keeping fails).
pub fn sync_abort(session: &Session, state: &Path) -> Result<(SyncMode, Vec<String>), ShipError> {
    let dir = worktree(session)?;
    let Some(mode) = in_progress(dir)? else {
        return Err(ShipError::NothingToAbort { slug: session.slug.clone() });
    };
    let mut kept = keep_strays(dir, &session.slug, &session.branch, state)?;
    match mode {
        SyncMode::Rebase => git::run(dir, &["rebase", "--abort"])?,
        SyncMode::Merge => git::run(dir, &["merge", "--abort"])?,
    };
    kept.extend(keep_strays(dir, &session.slug, &session.branch, state)?);
    let _ = std::fs::remove_file(state.join(SYNC_MARK));
    Ok((mode, kept))
}

/// A rebase or merge in progress in `worktree`, if any (git's own
/// markers: `rebase-merge/`, `rebase-apply/`, `MERGE_HEAD`).
fn in_progress(worktree: &Path) -> Result<Option<SyncMode>, GitError> {
    let path = |name: &str| -> Result<PathBuf, GitError> {
        Ok(PathBuf::from(git::read(worktree, &["rev-parse", "--path-format=absolute", "--git-path", name])?))
    };
    if path("rebase-merge")?.exists() || path("rebase-apply")?.exists() {
        return Ok(Some(SyncMode::Rebase));
    }
    Ok(path("MERGE_HEAD")?.exists().then_some(SyncMode::Merge))
}

/// `(remote, branch)` when `target` is a remote-tracking ref
/// (`origin/main`, `refs/remotes/origin/main`).
pub(super) fn remote_tracking(dir: &Path, target: &str) -> Result<Option<(String, String)>, GitError> {
    let name = target.strip_prefix("refs/remotes/").unwrap_or(target);
    for remote in git::remotes(dir)? {
        if let Some(branch) = name.strip_prefix(&format!("{remote}/")) {
            return Ok(Some((remote, branch.to_owned())));
        }
    }
    Ok(None)
}

/// Whether `branch` has an upstream or a remote-tracking twin: once
/// others may have it, rewriting it (rebase) is off by default.
fn on_remote(dir: &Path, branch: &str) -> Result<bool, GitError> {
    if git::test(dir, &["rev-parse", "--verify", "--quiet", &format!("{branch}@{{upstream}}")])? {
        return Ok(true);
    }
    for remote in git::remotes(dir)? {
        if git::resolve_commit(dir, &format!("refs/remotes/{remote}/{branch}"))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Aborts a rebase left in `worktree` (by `merge --rebase`), keeping
/// first and after what the agent committed meanwhile (see [`sync`]).
///
/// # Errors
/// Git errors.
pub(super) fn abort_rebase(worktree: &Path, branch: &str, slug: &str, state: &Path) -> Result<(), ShipError> {
    if in_progress(worktree)? != Some(SyncMode::Rebase) {
        return Ok(());
    }
    keep_strays(worktree, slug, branch, state)?;
    git::run(worktree, &["rebase", "--abort"])?;
    keep_strays(worktree, slug, branch, state)?;
    let _ = std::fs::remove_file(state.join(SYNC_MARK));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_rebase_says_why() {
        let stderr = "Rebasing (1/9)\rRebasing (2/9)\rerror: Unable to create '/r/.git/index.lock': File exists.\n\nAnother git process\nhint: Could not execute\n";
        assert_eq!(stop_reason(stderr), "Unable to create '/r/.git/index.lock': File exists.");
        assert_eq!(stop_reason("Rebasing (1/9)\rsomething odd\nhint: x\n"), "something odd");
        assert_eq!(stop_reason(""), "git gave no reason");
    }
}
