//! Taking a session's work toward its base: what it changed (`diff`),
//! pushing its branch (`push`), and bringing the base's new commits in
//! (`sync`, with `--abort`). Every mutation is a git CLI command in the
//! session's worktree; `sync` first records the branch's tip under
//! `refs/tandem/sync/<slug>/<unix time>-<commit>`, so a rebase loses
//! nothing.

use std::path::{Path, PathBuf};

use crate::git::{self, GitError};
use crate::store::Session;

/// Why a ship step cannot go on; each message is one line that says what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("`{against}` does not name a commit; pass base, remote, or an existing branch, tag or commit")]
    BadRef { against: String },
    #[error("this repository has no remote; add one with `git remote add origin URL`")]
    NoRemote,
    #[error("the remote has no default branch known here; run `git remote set-head origin --auto`")]
    NoRemoteDefault,
    #[error("session `{slug}` has no worktree at {}; `tandem doctor` explains", path.display())]
    NoWorktree { slug: String, path: PathBuf },
    #[error("`{branch}` is a protected branch; tandem never pushes it")]
    Protected { branch: String },
    #[error(
        "session `{slug}` has uncommitted changes in {files} file(s); commit them (or ask its agent to) before syncing"
    )]
    Dirty { slug: String, files: usize },
    #[error("session `{slug}` has no sync in progress")]
    NothingToAbort { slug: String },
    #[error("cannot read tandem's owner tag (`<state folder>/owner`): {why}; check the state folder is writable")]
    Owner { why: String },
    #[error("session `{slug}` is in the middle of a rebase or merge; finish it, or run `tandem sync {slug} --abort`")]
    InProgress { slug: String },
    #[error("`git push` failed: {0}")]
    Push(String),
    #[error("{branch} has uncommitted changes in {} ({files} file(s)); commit or stash them there first", path.display())]
    TargetDirty { branch: String, path: PathBuf, files: usize },
    #[error("merging {slug} into {target} would conflict in {}; run `tandem sync {slug}` and resolve them first", files.join(", "))]
    WouldConflict { slug: String, target: String, files: Vec<String> },
    #[error("{slug} has nothing to merge into {target}")]
    NothingToMerge { slug: String, target: String },
    #[error("{target} cannot be fast-forwarded to {slug}; sync it first or merge without --ff")]
    NotFastForward { slug: String, target: String },
}

/// What the diff is taken against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Against {
    /// The ref the session branched from (its recorded base).
    Base,
    /// The remote's default branch (`origin/HEAD`).
    Remote,
    /// Any commit-ish.
    Ref(String),
}

impl Against {
    /// `base`, `remote`, or a ref.
    #[must_use]
    pub fn parse(text: &str) -> Against {
        match text {
            "base" => Against::Base,
            "remote" => Against::Remote,
            other => Against::Ref(other.to_owned()),
        }
    }
}

/// The session's worktree, or why there is none.
///
/// # Errors
/// [`ShipError::NoWorktree`].
pub fn worktree(session: &Session) -> Result<&Path, ShipError> {
    if session.path.is_dir() {
        Ok(&session.path)
    } else {
        Err(ShipError::NoWorktree { slug: session.slug.clone(), path: session.path.clone() })
    }
}

/// The commit a diff starts from: the merge-base of the session's `HEAD`
/// and `against` (as `git diff A...` does), so the base's own later
/// commits do not show as the session's changes.
///
/// # Errors
/// [`ShipError::BadRef`] for a ref naming no commit, [`ShipError::NoRemote`]
/// / [`ShipError::NoRemoteDefault`] for `remote` without one.
pub fn diff_from(session: &Session, against: &Against) -> Result<String, ShipError> {
    let dir = worktree(session)?;
    let target = match against {
        Against::Base => {
            // The base ref as recorded; its commit then if the ref is gone.
            if git::resolve_commit(dir, &session.base_ref)?.is_some() {
                session.base_ref.clone()
            } else {
                session.base_commit.clone()
            }
        }
        Against::Remote => {
            let remote = git::remotes(dir)?.into_iter().next().ok_or(ShipError::NoRemote)?;
            let head = git::remote_head(dir, &remote)?.ok_or(ShipError::NoRemoteDefault)?;
            format!("refs/remotes/{remote}/{head}")
        }
        Against::Ref(name) => name.clone(),
    };
    let Some(commit) = git::resolve_commit(dir, &target)? else {
        return Err(ShipError::BadRef { against: target });
    };
    Ok(git::merge_base(dir, &commit, "HEAD")?.unwrap_or(commit))
}

/// A copy of the worktree's index in which every untracked, not ignored
/// file is added as intent-to-add (`git add -N`), so `git diff` shows new
/// files too without writing anything to the repository. Point
/// `GIT_INDEX_FILE` at [`IntentIndex::path`]; the copy goes when dropped.
pub struct IntentIndex {
    file: tempfile::NamedTempFile,
}

impl IntentIndex {
    /// # Errors
    /// Git errors, or the copy failing.
    pub fn new(worktree: &Path) -> Result<IntentIndex, ShipError> {
        let index =
            PathBuf::from(git::read(worktree, &["rev-parse", "--path-format=absolute", "--git-path", "index"])?);
        let file = tempfile::NamedTempFile::new().map_err(|e| GitError::Spawn { error: e })?;
        if index.exists() {
            std::fs::copy(&index, file.path()).map_err(|e| GitError::Spawn { error: e })?;
        }
        let mut cmd = git::command(worktree);
        cmd.env("GIT_INDEX_FILE", file.path())
            .args(["add", "--intent-to-add", "--all"])
            .args(git::add_all_pathspec(worktree)?);
        git::output(cmd)?;
        Ok(IntentIndex { file })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// One file's counts in a diff (`git diff --numstat`); `None` counts for
/// a binary file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileCounts {
    pub path: String,
    pub insertions: Option<u32>,
    pub deletions: Option<u32>,
}

/// Parses `git diff --numstat -z` output.
#[must_use]
pub fn parse_numstat(out: &str) -> Vec<FileCounts> {
    let mut files = Vec::new();
    let mut fields = out.split('\0').filter(|f| !f.is_empty());
    while let Some(entry) = fields.next() {
        let mut parts = entry.splitn(3, '\t');
        let (Some(ins), Some(del), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        // A rename has an empty path and the two names in the next fields.
        let path = if path.is_empty() {
            let _from = fields.next();
            fields.next().unwrap_or_default().to_owned()
        } else {
            path.to_owned()
        };
        files.push(FileCounts { path, insertions: ins.parse().ok(), deletions: del.parse().ok() });
    }
    files
}

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
    /// Stopped on conflicts in `files`; the rebase or merge is left in
    /// progress for the user to finish or `--abort`.
    Conflict { mode: SyncMode, target: String, files: Vec<String>, saved: String },
}

/// Brings the base's new commits into the session's branch: fetches a
/// remote-tracking base first (a failure only means the last fetched
/// state is used; `note` says why), then rebases (the default while the
/// branch is on no remote) or merges. Refuses uncommitted changes and a
/// rebase or merge already in progress.
///
/// # Errors
/// [`ShipError::Dirty`], [`ShipError::InProgress`], git errors.
pub fn sync(
    session: &Session,
    mode: Option<SyncMode>,
    fetch_timeout: std::time::Duration,
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
    let saved = save_tip(dir, &session.slug)?;
    let args: Vec<&str> = match mode {
        SyncMode::Rebase => vec!["rebase", "--no-autostash", &target],
        SyncMode::Merge => vec!["merge", "--no-edit", &target],
    };
    match git::run(dir, &args) {
        Ok(_) => Ok(Synced::Done { mode, target, commits: behind, saved }),
        Err(GitError::Failed { .. }) if in_progress(dir)?.is_some() => {
            let files = git::read(dir, &["diff", "--name-only", "--diff-filter=U"])?;
            Ok(Synced::Conflict { mode, target, files: files.lines().map(str::to_owned).collect(), saved })
        }
        Err(e) => Err(e.into()),
    }
}

/// Records the worktree's `HEAD` under
/// `refs/tandem/sync/<slug>/<unix time>-<commit>-<owner tag>` before a
/// rebase rewrites it; returns the ref. Named by time and tip, so a second
/// try of the same tip (after an abort) finds its ref already there; the
/// owner tag ([`crate::paths::Paths::owner_tag`]) keeps another state
/// folder's `gc` off it.
fn save_tip(dir: &Path, slug: &str) -> Result<String, ShipError> {
    let head = git::read(dir, &["rev-parse", "HEAD"])?;
    let owner = crate::paths::Paths::from_env()
        .map_err(|e| e.to_string())
        .and_then(|p| p.owner_tag().map_err(|e| e.to_string()));
    let owner = owner.map_err(|why| ShipError::Owner { why })?;
    let saved = format!("refs/tandem/sync/{slug}/{}-{}-{owner}", crate::unix_now(), git::short(&head));
    if git::resolve_commit(dir, &saved)?.is_none() {
        git::create_ref(dir, &saved, &head)?;
    }
    Ok(saved)
}

/// Ends a `sync` that stopped on conflicts: `git rebase --abort` or
/// `git merge --abort`, which put the branch and the tree back as they
/// were. Returns which was aborted.
///
/// # Errors
/// [`ShipError::NothingToAbort`], git errors.
pub fn sync_abort(session: &Session) -> Result<SyncMode, ShipError> {
    let dir = worktree(session)?;
    match in_progress(dir)? {
        Some(SyncMode::Rebase) => git::run(dir, &["rebase", "--abort"]).map(|_| SyncMode::Rebase),
        Some(SyncMode::Merge) => git::run(dir, &["merge", "--abort"]).map(|_| SyncMode::Merge),
        None => return Err(ShipError::NothingToAbort { slug: session.slug.clone() }),
    }
    .map_err(Into::into)
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
fn remote_tracking(dir: &Path, target: &str) -> Result<Option<(String, String)>, GitError> {
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

/// The remote a session's branch goes to: its base's remote when the base
/// is remote-tracking, else `origin`, else the only remote.
///
/// # Errors
/// [`ShipError::NoRemote`], git errors.
pub fn push_remote(session: &Session) -> Result<String, ShipError> {
    let dir = worktree(session)?;
    if let Some((remote, _)) = remote_tracking(dir, &session.base_ref)? {
        return Ok(remote);
    }
    let remotes = git::remotes(dir)?;
    if remotes.iter().any(|r| r == "origin") {
        return Ok("origin".to_owned());
    }
    match remotes.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(ShipError::NoRemote),
    }
}

/// Pushes the session's branch to `remote` with its upstream set
/// (`git push --set-upstream REMOTE BRANCH`). The caller checks that the
/// branch is not protected. Returns git's own report.
///
/// # Errors
/// [`ShipError::Push`] with git's message.
pub fn push(session: &Session, remote: &str) -> Result<String, ShipError> {
    let dir = worktree(session)?;
    let refspec = format!("refs/heads/{0}:refs/heads/{0}", session.branch);
    let mut cmd = git::command(dir);
    cmd.args(["push", "--set-upstream", remote, &refspec]);
    match git::output(cmd) {
        Ok(out) => Ok(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(GitError::Failed { stderr, .. }) => {
            Err(ShipError::Push(stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

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
/// (found first with `git merge-tree`; the files are named), and when
/// there is nothing to merge. `message` titles a squash commit. Returns
/// the target's new commit.
///
/// # Errors
/// [`ShipError::TargetDirty`], [`ShipError::WouldConflict`],
/// [`ShipError::NothingToMerge`], [`ShipError::NotFastForward`], git
/// errors.
pub fn merge(
    repo: &Path,
    session: &Session,
    target: &str,
    mode: MergeMode,
    message: &str,
    scratch: &Path,
) -> Result<String, ShipError> {
    let dir = worktree(session)?;
    let branch = &session.branch;
    if git::resolve_commit(repo, &format!("refs/heads/{target}"))?.is_none() {
        return Err(ShipError::BadRef { against: target.to_owned() });
    }
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
    let (place, temporary) = match git::worktree_of_branch(repo, target)? {
        Some(path) => {
            let status = git::status(&path)?;
            if status.changed > 0 {
                return Err(ShipError::TargetDirty { branch: target.to_owned(), path, files: status.changed });
            }
            (path, false)
        }
        None => {
            git::worktree_add_existing(repo, scratch, target)?;
            (scratch.to_owned(), true)
        }
    };
    let merged = (|| -> Result<(), ShipError> {
        match mode {
            MergeMode::Commit => {
                git::run(&place, &["merge", "--no-ff", "-m", message, branch])?;
            }
            MergeMode::FastForward => {
                git::run(&place, &["merge", "--ff-only", branch])?;
            }
            MergeMode::Squash => {
                git::run(&place, &["merge", "--squash", branch])?;
                git::run(&place, &["commit", "-q", "-m", message])?;
            }
            MergeMode::Rebase => {
                // Replay in the session's worktree (its old tip kept),
                // then move the target.
                save_tip(dir, &session.slug)?;
                git::run(dir, &["rebase", target])?;
                git::run(&place, &["merge", "--ff-only", branch])?;
            }
        }
        Ok(())
    })();
    if let Err(e) = merged {
        // Put the target back as it was; the rebase's own abort for the
        // session's worktree.
        let _ = git::run(&place, &["merge", "--abort"]);
        let _ = git::run(dir, &["rebase", "--abort"]);
        if temporary {
            let _ = git::worktree_remove(repo, &place, true);
        }
        return Err(e);
    }
    let new = git::read(&place, &["rev-parse", "HEAD"])?;
    if temporary {
        git::worktree_remove(repo, &place, false)?;
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numstat_with_binaries_and_renames() {
        let out = "3\t1\tsrc/a.rs\0-\t-\tlogo.png\x000\t0\t\0old.txt\0new.txt\0";
        assert_eq!(
            parse_numstat(out),
            [
                FileCounts { path: "src/a.rs".into(), insertions: Some(3), deletions: Some(1) },
                FileCounts { path: "logo.png".into(), insertions: None, deletions: None },
                FileCounts { path: "new.txt".into(), insertions: Some(0), deletions: Some(0) },
            ]
        );
        assert_eq!(Against::parse("remote"), Against::Remote);
        assert_eq!(Against::parse("v1.2"), Against::Ref("v1.2".into()));
    }
}
