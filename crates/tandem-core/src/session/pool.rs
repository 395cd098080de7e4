//! The worktree pool (issue 23): `[worktrees] pool = N` keeps N checked
//! out worktrees per repository ready, so `tandem new` costs a rename and
//! the files that differ instead of a whole checkout.
//!
//! A pooled worktree lives in `<worktrees>/.pool/<name>`, is a linked
//! worktree on a detached HEAD at the pool's base (the repository's
//! default base when it was made, [`pool_base`]), and is **ready** only
//! while git records it locked with the reason [`READY`]: git's own lock
//! keeps `git worktree prune` (tandem's and the user's) off it, and a
//! worktree that is being made (`git worktree add` locks it
//! `initializing`), was cut short, or is being taken is never ready.
//!
//! - [`make`] adds one (`git worktree add --detach`, then the lock); the
//!   supervisor runs it in the background at the lowest CPU and disk
//!   priority.
//! - [`take`] hands one to a new session under the repository's lock:
//!   checks that nothing was written in it (`git status`, ignored files
//!   included), unlocks it, `git worktree move`s it to the session's path
//!   and `git switch`es it to the session's branch at the requested
//!   commit, which checks out only the files that differ (git's two-way
//!   merge, as `read-tree -m -u`). A base whose tree differs from the
//!   pooled one in more than half the files is taken as "far": `new`
//!   falls back to `git worktree add`.
//! - [`tidy`] removes what is not a ready worktree (a `kill -9` during
//!   [`make`] leaves a half checkout, or a whole one never locked), ready
//!   ones beyond N or far from the base, and never one someone wrote in:
//!   [`take`] and [`tidy`] lock such a one [`CHANGED`] instead, `tandem
//!   doctor` reports it, and it is left alone.
//!
//! The pool never holds user work: nothing is run in a pooled worktree
//! (no setup hook, no `.worktreeinclude` copy; those run once it is a
//! session's), and a pooled worktree with any change is never handed out.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::{SessionError, Start, same_path};
use crate::config::Config;
use crate::git;
use crate::repo::Repository;

/// The lock reason that marks a pooled worktree ready to be taken.
pub const READY: &str = "tandem pool: ready for `tandem new`, holds no work";

/// The lock reason of a pooled worktree found with changes: never handed
/// out, never removed by tandem, reported by `tandem doctor`.
pub const CHANGED: &str = "tandem pool: has changes nobody should have made; left alone";

pub use crate::config::MAX_POOL;

/// The pool's folder beside a repository's session worktrees.
#[must_use]
pub fn pool_dir(worktrees: &Path) -> PathBuf {
    worktrees.join(".pool")
}

/// One folder of the pool as [`status`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The pooled worktree's folder.
    pub path: PathBuf,
    /// Its HEAD commit, when git lists it.
    pub commit: Option<String>,
    /// What it is.
    pub kind: EntryKind,
}

/// What a folder of the pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Locked [`READY`]: [`take`] may hand it out.
    Ready,
    /// Not (yet, or any more) ready: being made or taken, or left half
    /// done by a killed process; [`tidy`] removes it when nobody is at it.
    Unready,
    /// Locked [`CHANGED`]: someone wrote in it while it was pooled. Left
    /// alone (it may hold what they made); not counted in the pool.
    Changed,
}

/// The pool of `repo` as it is on disk: every folder in [`pool_dir`] and
/// every git worktree under it, sorted by path.
///
/// # Errors
/// Git errors from `git worktree list`.
pub fn status(repo: &Repository, worktrees: &Path) -> Result<Vec<Entry>, SessionError> {
    let dir = pool_dir(worktrees);
    let listed = git::worktree_list(&repo.root)?;
    let mut out: Vec<Entry> = Vec::new();
    let mut seen = |path: PathBuf| {
        if out.iter().any(|e| same_path(&e.path, &path)) {
            return;
        }
        let git = listed.iter().find(|w| same_path(&w.path, &path));
        let locked = git.and_then(|w| w.locked.as_deref()).filter(|_| path.is_dir());
        let kind = match locked {
            Some(READY) if git.is_some_and(|w| w.detached) => EntryKind::Ready,
            Some(CHANGED) => EntryKind::Changed,
            _ => EntryKind::Unready,
        };
        out.push(Entry { path, commit: git.and_then(|w| w.head.clone()), kind });
    };
    for w in &listed {
        if w.path.parent().is_some_and(|p| same_path(p, &dir)) {
            seen(w.path.clone());
        }
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        seen(entry.path());
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The commit the pool is made at: the repository's default base
/// (`base.default`) as it resolves now, without fetching (`fresh` takes
/// the remote's default branch as last fetched, else HEAD). `None` when
/// the repository has no commit.
#[must_use]
pub fn pool_base(repo: &Repository, config: &Config) -> Option<String> {
    let head = || git::resolve_commit(&repo.root, "HEAD").ok().flatten();
    match config.base.default.as_str() {
        "head" | "HEAD" => head(),
        "fresh" => {
            let remote = git::remotes(&repo.root).ok()?.into_iter().next();
            let branch = remote.as_deref().and_then(|r| git::remote_head(&repo.root, r).ok().flatten());
            match (remote, branch) {
                (Some(r), Some(b)) => git::resolve_commit(&repo.root, &format!("refs/remotes/{r}/{b}")).ok().flatten(),
                _ => None,
            }
            .or_else(head)
        }
        base => git::resolve_commit(&repo.root, base).ok().flatten().or_else(head),
    }
}

/// Adds one pooled worktree at `commit` and marks it ready; returns its
/// folder. `making` is told the folder before git starts, so a [`tidy`]
/// running meanwhile leaves it alone. A failure removes what was made.
///
/// # Errors
/// Git and I/O errors.
pub fn make(
    repo: &Repository,
    worktrees: &Path,
    commit: &str,
    making: impl FnOnce(&Path),
) -> Result<PathBuf, SessionError> {
    let dir = pool_dir(worktrees);
    std::fs::create_dir_all(&dir)?;
    super::create::exclude_if_inside(repo, worktrees)?;
    let mut id = [0u8; 4];
    rand::rng().fill_bytes(&mut id);
    let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("p{name}"));
    making(&path);
    let made = (|| -> Result<(), SessionError> {
        let mut cmd = git::command(&repo.root);
        cmd.args(["worktree", "add", "--quiet", "--detach", "--"]).arg(&path).arg(commit);
        git::output(cmd)?;
        crate::fault::point("pool.added");
        git::run(
            &repo.root,
            &[OsStr::new("worktree"), OsStr::new("lock"), OsStr::new("--reason"), OsStr::new(READY), path.as_os_str()],
        )?;
        Ok(())
    })();
    if let Err(e) = made {
        if let Some(aside) = discard(repo, &path) {
            super::end::delete_tree(&aside);
        }
        return Err(e);
    }
    Ok(path)
}

/// What [`take`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// A pooled worktree is the session's now, at its path.
    Taken {
        /// The pooled folder it was.
        from: PathBuf,
    },
    /// None was ready, or every ready one had changes, or the base is far
    /// from the pool's: make the worktree with `git worktree add`.
    Missed {
        /// Why, in a few words (for the log).
        why: &'static str,
    },
}

/// Hands a ready pooled worktree to a new session: `dest` is the
/// session's worktree path, `branch` its branch, `start` where the
/// branch starts ([`Start::NewBranch`]: a new branch at that commit;
/// [`Start::Existing`]: the existing branch). Runs under the repository's
/// lock. Once the worktree has moved, a failure is returned as an error
/// with the worktree at `dest` (the caller undoes the creation, which
/// discards it).
///
/// # Errors
/// Git and I/O errors.
pub fn take(
    repo: &Repository,
    worktrees: &Path,
    dest: &Path,
    branch: &str,
    start: &Start,
) -> Result<Taken, SessionError> {
    let target = match start {
        Start::NewBranch { at } => at.clone(),
        Start::Existing => match git::resolve_commit(&repo.root, &format!("refs/heads/{branch}"))? {
            Some(tip) => tip,
            None => return Ok(Taken::Missed { why: "no branch tip" }),
        },
    };
    let mut ready: Vec<Entry> =
        status(repo, worktrees)?.into_iter().filter(|e| e.kind == EntryKind::Ready && e.commit.is_some()).collect();
    if ready.is_empty() {
        return Ok(Taken::Missed { why: "no ready worktree" });
    }
    // One already at the requested commit first.
    ready.sort_by_key(|e| e.commit.as_deref() != Some(target.as_str()));
    let mut far = false;
    for entry in ready {
        let commit = entry.commit.as_deref().unwrap_or_default();
        if commit != target && is_far(repo, &entry.path, commit, &target)? {
            far = true;
            continue;
        }
        if !is_clean(&entry.path)? {
            set_aside(repo, &entry.path)?;
            continue;
        }
        git::run(&repo.root, &[OsStr::new("worktree"), OsStr::new("unlock"), entry.path.as_os_str()])?;
        crate::fault::point("pool.unlocked");
        git::worktree_move(&repo.root, &entry.path, dest)?;
        crate::fault::point("pool.moved");
        let mut cmd = git::command(dest);
        match start {
            Start::NewBranch { .. } => {
                cmd.args(["switch", "--quiet", "--no-track", "-c", branch, &target]);
            }
            Start::Existing => {
                cmd.args(["switch", "--quiet", "--no-guess", branch]);
            }
        }
        git::output(cmd)?;
        return Ok(Taken::Taken { from: entry.path });
    }
    Ok(Taken::Missed { why: if far { "the base is far from the pool's" } else { "every ready worktree has changes" } })
}

/// Marks the ready worktree at `path` [`CHANGED`]: someone wrote in it.
fn set_aside(repo: &Repository, path: &Path) -> Result<(), SessionError> {
    tracing::warn!(path = %path.display(), "a pooled worktree has changes; left alone (`tandem doctor`)");
    git::run(&repo.root, &[OsStr::new("worktree"), OsStr::new("unlock"), path.as_os_str()])?;
    git::run(
        &repo.root,
        &[OsStr::new("worktree"), OsStr::new("lock"), OsStr::new("--reason"), OsStr::new(CHANGED), path.as_os_str()],
    )?;
    Ok(())
}

/// Whether the trees of `from` and `to` differ in more than half the
/// files of the pooled worktree at `path` (its index's entry count).
fn is_far(repo: &Repository, path: &Path, from: &str, to: &str) -> Result<bool, SessionError> {
    let mut cmd = git::command(&repo.root);
    cmd.args(["diff-tree", "-r", "--no-renames", "--name-only", "-z", from, to]);
    let Ok(out) = git::output(cmd) else { return Ok(true) };
    let changed = out.stdout.iter().filter(|b| **b == 0).count();
    let files = index_entries(path).unwrap_or(0);
    Ok(changed.saturating_mul(2) > files.max(1))
}

/// The number of entries in the index of the linked worktree at `path`:
/// bytes 8–11 of the index file, big-endian (gitformat-index(5): the
/// header is `DIRC`, a version, the entry count). `None` when unreadable.
fn index_entries(path: &Path) -> Option<usize> {
    let dotgit = std::fs::read_to_string(path.join(".git")).ok()?;
    let admin = PathBuf::from(dotgit.strip_prefix("gitdir:")?.trim());
    let admin = if admin.is_absolute() { admin } else { path.join(admin) };
    let mut header = [0u8; 12];
    let mut file = std::fs::File::open(admin.join("index")).ok()?;
    std::io::Read::read_exact(&mut file, &mut header).ok()?;
    (&header[..4] == b"DIRC").then(|| u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize)
}

/// Whether nothing was written in the worktree at `path`: no change to a
/// tracked file, no untracked file, no ignored file.
fn is_clean(path: &Path) -> Result<bool, SessionError> {
    let mut cmd = git::command(path);
    cmd.args(["status", "--porcelain", "-z", "--untracked-files=all", "--ignored=matching"]);
    Ok(git::output(cmd)?.stdout.is_empty())
}

/// What [`tidy`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tidied {
    /// Folders removed: unready leftovers, ready ones beyond the size or
    /// far from the base.
    pub removed: Vec<PathBuf>,
    /// Ready worktrees kept.
    pub ready: usize,
    /// Ready worktrees with changes: left alone.
    pub changed: Vec<PathBuf>,
    /// Where the removed folders were renamed to: the caller deletes them
    /// ([`crate::session::end::delete_tree`]), outside the lock.
    pub aside: Vec<PathBuf>,
}

/// Removes from the pool of `repo` what is not a ready worktree (unless
/// `busy` names it: being made or taken), the ready ones beyond `keep`,
/// and ready ones far from `base`; never a worktree with changes. Runs
/// under the repository's lock (a [`take`] must not pick what this
/// removes); the folders it removes are renamed aside, and the caller
/// deletes them ([`Tidied::aside`]) once it has let the lock go.
///
/// # Errors
/// Git errors from the listing.
pub fn tidy(
    repo: &Repository,
    worktrees: &Path,
    keep: u32,
    base: Option<&str>,
    busy: &HashSet<PathBuf>,
) -> Result<Tidied, SessionError> {
    let mut done = Tidied::default();
    for entry in status(repo, worktrees)? {
        if busy.iter().any(|b| same_path(b, &entry.path)) {
            continue;
        }
        if entry.kind == EntryKind::Ready {
            let commit = entry.commit.as_deref().unwrap_or_default();
            let near = match base {
                Some(base) if base != commit => !is_far(repo, &entry.path, commit, base)?,
                _ => true,
            };
            if near && done.ready < keep as usize {
                done.ready += 1;
                continue;
            }
            if !is_clean(&entry.path)? {
                set_aside(repo, &entry.path)?;
                done.changed.push(entry.path);
                continue;
            }
        }
        if entry.kind == EntryKind::Changed {
            done.changed.push(entry.path);
            continue;
        }
        done.aside.extend(discard(repo, &entry.path));
        done.removed.push(entry.path);
    }
    let dir = pool_dir(worktrees);
    if keep == 0 && dir.is_dir() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(done)
}

/// Removes the pooled worktree at `path` from git's records, whatever
/// state it is in: git's lock lifted, the folder renamed aside (a name
/// starting `.gone-` in the pool's folder, which [`status`] lists as
/// unready until it is gone), git's record pruned. Returns the folder to
/// delete. Errors are logged (`doctor` shows what is left).
fn discard(repo: &Repository, path: &Path) -> Option<PathBuf> {
    let _ = git::run(&repo.root, &[OsStr::new("worktree"), OsStr::new("unlock"), path.as_os_str()]);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let aside =
        if name.starts_with(".gone-") { path.to_path_buf() } else { path.with_file_name(format!(".gone-{name}")) };
    let moved = path.exists() && (aside == path || std::fs::rename(path, &aside).is_ok());
    if let Err(e) = git::worktree_prune(&repo.root) {
        tracing::warn!(error = %e, "cannot prune a removed pooled worktree");
    }
    moved.then_some(aside)
}

/// What `tandem doctor` says of the pool of `repo` (folders in `busy`
/// are being made or deleted, and are not findings): a folder left half
/// made (removed with `fix`), and a pooled worktree someone wrote in
/// ([`EntryKind::Changed`]; left alone: it may hold what they made).
///
/// # Errors
/// Git errors from the listing.
pub fn doctor(
    repo: &Repository,
    worktrees: &Path,
    busy: &HashSet<PathBuf>,
    fix: bool,
) -> Result<Vec<crate::model::Finding>, SessionError> {
    let mut findings = Vec::new();
    for entry in status(repo, worktrees)? {
        if busy.iter().any(|b| same_path(b, &entry.path)) {
            continue;
        }
        let shown = entry.path.display();
        match entry.kind {
            EntryKind::Unready => {
                let fixed = fix && {
                    if let Some(aside) = discard(repo, &entry.path) {
                        super::end::delete_tree(&aside);
                    }
                    !entry.path.exists()
                };
                findings.push(crate::model::Finding {
                    session: None,
                    problem: format!(
                        "{shown} is a pooled worktree that was never made ready (a killed supervisor left it)"
                    ),
                    remedy: "remove it (`tandem gc` does too)".to_owned(),
                    fixed,
                });
            }
            EntryKind::Changed => findings.push(crate::model::Finding {
                session: None,
                problem: format!("pooled worktree {shown} has changes; `tandem new` never hands it out"),
                remedy: format!(
                    "left alone: look through it, then `git worktree unlock {shown}` and `git worktree remove --force {shown}`"
                ),
                fixed: false,
            }),
            EntryKind::Ready => {}
        }
    }
    Ok(findings)
}
