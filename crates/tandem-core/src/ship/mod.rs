//! Shipping a session's work: its diff, a review of it ([`review`]),
//! pushing, its pull request ([`pull_request`], over the GitHub API of
//! [`github`]), merging ([`merge_journal`] keeps a killed merge
//! recoverable) and syncing with its base. Built on a session's row and
//! git; the session lifecycle ([`crate::session`]) is underneath.
//!
//! Taking a session's work toward its base: what it changed (`diff`),
//! pushing its branch (`push`), and bringing the base's new commits in
//! (`sync`, with `--abort`). Every mutation is a git CLI command in the
//! session's worktree; `sync` first records the branch's tip under
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

pub mod github;
pub mod merge_journal;
pub mod pull_request;
pub mod review;

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
    #[error("syncing {slug} did not start: {reason}; nothing is in progress, run `tandem sync {slug}` again")]
    SyncFailed { slug: String, reason: String },
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
    #[error("a merge of {slug} into {target} was interrupted and left {} half done; roll it back with `tandem merge --abort {slug}`", path.display())]
    Interrupted { slug: String, target: String, path: PathBuf },
    #[error("no merge of {slug} to abort: none was interrupted; `tandem doctor` lists what is")]
    NoMergeToAbort { slug: String },
    #[error("a merge of {slug} is still running (pid {pid}); wait for it to end, then try again")]
    MergeRunning { slug: String, pid: u32 },
    #[error("a git process (pid {pid}) is still at work in {}; wait for it to end, then try again", path.display())]
    GitBusy { path: PathBuf, pid: u32 },
    #[error(
        "{target} moved elsewhere (or its worktree was switched) since the interrupted merge of {slug} began; check it by hand, then remove that merge's record with `tandem merge --abort {slug}`"
    )]
    MergeMoved { slug: String, target: String },
    #[error("cannot write to tandem's state folder: {0}")]
    State(#[source] std::io::Error),
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
    /// Stopped on conflicts in `files` (never empty); the rebase or merge
    /// is left in progress for the user to finish or `--abort`.
    Conflict { mode: SyncMode, target: String, files: Vec<String>, saved: String },
    /// Stopped for another reason than a conflict (`reason`: git's own
    /// line, e.g. the agent's git holding the index lock); left in
    /// progress as for a conflict.
    Stopped { mode: SyncMode, target: String, reason: String, saved: String },
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
const SYNC_MARK: &str = "sync-reflog";

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
fn mark_reflogs(dir: &Path, branch: &str, state: &Path) -> Result<(), ShipError> {
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
fn keep_strays(dir: &Path, slug: &str, branch: &str, state: &Path) -> Result<Vec<String>, ShipError> {
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
fn save_tip(dir: &Path, slug: &str) -> Result<String, ShipError> {
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
/// [`ShipError::NothingToMerge`], [`ShipError::NotFastForward`],
/// [`ShipError::Interrupted`], [`ShipError::State`], git errors.
pub fn merge(
    repo: &Path,
    session: &Session,
    target: &str,
    mode: MergeMode,
    message: &str,
    state: &Path,
) -> Result<String, ShipError> {
    use self::merge_journal::{self, Journal};
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
        let stderr = "Rebasing (1/9)\rRebasing (2/9)\rerror: Unable to create '/r/.git/index.lock': File exists.\n\nAnother git process\nhint: Could not execute\n";
        assert_eq!(stop_reason(stderr), "Unable to create '/r/.git/index.lock': File exists.");
        assert_eq!(stop_reason("Rebasing (1/9)\rsomething odd\nhint: x\n"), "something odd");
        assert_eq!(stop_reason(""), "git gave no reason");
        assert_eq!(Against::parse("v1.2"), Against::Ref("v1.2".into()));
    }
}
