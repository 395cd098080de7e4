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
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::{SessionError, Start, same_path};
use crate::config::Config;
use crate::git;
use crate::repo::Repository;

/// The lock reason that marks a pooled worktree ready to be taken.
pub const READY: &str = "tandem pool: ready for `tandem new`, holds no work";

/// The lock reason `git worktree add` sets while it checks out; a take
/// sets it too from the moment it begins until the session's branch is
/// checked out, so a kill in between leaves a checkout that reconcile
/// undoes as a creation cut short.
const INITIALIZING: &str = "initializing";

/// The lock reason of a pooled worktree found with changes: never handed
/// out, never removed by tandem, reported by `tandem doctor`.
pub const CHANGED: &str = "tandem pool: has changes nobody should have made; left alone";

pub use crate::config::MAX_POOL;

/// The pool's folder of `repo` beside its session worktrees:
/// `<worktrees>/.pool/<repository dir name>`, so repositories that share
/// a `worktrees.dir` never touch each other's pools.
#[must_use]
pub fn pool_dir(worktrees: &Path, repo: &Repository) -> PathBuf {
    worktrees.join(".pool").join(repo.dir_name())
}

/// git for the pool's own work (adding, locking): the repository's hooks
/// (`post-checkout`) do not run in a pooled worktree.
fn pool_git(dir: &Path) -> std::process::Command {
    let mut cmd = git::command(dir);
    cmd.args(["-c", "core.hooksPath=/dev/null"]);
    cmd
}

/// `git worktree lock --reason REASON PATH`, or `unlock` when `None`.
fn set_lock(repo: &Repository, path: &Path, reason: Option<&str>) -> Result<(), SessionError> {
    let mut cmd = pool_git(&repo.root);
    match reason {
        Some(reason) => cmd.args(["worktree", "lock", "--reason", reason, "--"]),
        None => cmd.args(["worktree", "unlock", "--"]),
    };
    cmd.arg(path);
    git::output(cmd)?;
    Ok(())
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
    /// Left half done (being made or taken, or a killed process's): a
    /// checkout git left locked `initializing`, a folder git lists but
    /// that is gone, an empty folder, or one set aside (`.gone-…`).
    /// [`tidy`] removes it when nobody is at it.
    Half,
    /// A whole worktree git lists, unlocked: made but never marked ready
    /// (a kill between the checkout and the lock). [`tidy`] removes it if
    /// nothing was written in it and it is still detached, else sets it
    /// aside as [`EntryKind::Changed`].
    Unready,
    /// Locked [`CHANGED`] (someone wrote in it while it was pooled), or
    /// locked by someone else, or a folder git does not list that holds
    /// files: left alone (it may hold what they made); not counted.
    Changed,
}

/// The pool of `repo` as it is on disk: every folder in [`pool_dir`] and
/// every git worktree under it, sorted by path.
///
/// # Errors
/// Git errors from `git worktree list`.
pub fn status(repo: &Repository, worktrees: &Path) -> Result<Vec<Entry>, SessionError> {
    let dir = pool_dir(worktrees, repo);
    let listed = git::worktree_list(&repo.root)?;
    let mut out: Vec<Entry> = Vec::new();
    let mut seen = |path: PathBuf| {
        if out.iter().any(|e| same_path(&e.path, &path)) {
            return;
        }
        let git = listed.iter().find(|w| same_path(&w.path, &path));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let empty = std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none());
        let kind = match git {
            // Set aside, then found written in and not put back, or
            // locked by someone else: [`discard`] unlocks what it moves.
            Some(w)
                if name.starts_with(".gone-")
                    && w.locked.as_deref().is_some_and(|l| l != READY && l != INITIALIZING) =>
            {
                EntryKind::Changed
            }
            _ if name.starts_with(".gone-") => EntryKind::Half,
            Some(_) if !path.is_dir() => EntryKind::Half,
            Some(w) => match w.locked.as_deref() {
                Some(READY) if w.detached => EntryKind::Ready,
                Some(INITIALIZING) => EntryKind::Half,
                // On a branch: a take cut short is locked initializing,
                // so this is someone's, whatever it holds.
                None if !w.detached => EntryKind::Changed,
                None => EntryKind::Unready,
                Some(_) => EntryKind::Changed,
            },
            None if empty || !path.is_dir() => EntryKind::Half,
            None => EntryKind::Changed,
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
    let dir = pool_dir(worktrees, repo);
    std::fs::create_dir_all(&dir)?;
    super::create::exclude_if_inside(repo, worktrees)?;
    let mut id = [0u8; 4];
    rand::rng().fill_bytes(&mut id);
    let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("p{name}"));
    making(&path);
    let made = (|| -> Result<(), SessionError> {
        let mut cmd = pool_git(&repo.root);
        cmd.args(["worktree", "add", "--quiet", "--detach", "--"]).arg(&path).arg(commit);
        git::output(cmd)?;
        crate::fault::point("pool.added");
        set_lock(repo, &path, Some(READY))
    })();
    if let Err(e) = made {
        if let Some(aside) = discard(repo, &path, EntryKind::Half) {
            delete(repo, &aside);
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
        // Locked `initializing` from here until the branch is checked
        // out: whatever a kill interrupts is a creation cut short.
        set_lock(repo, &entry.path, None)?;
        set_lock(repo, &entry.path, Some(INITIALIZING))?;
        crate::fault::point("pool.unlocked");
        let mut cmd = git::command(&repo.root);
        cmd.args(["worktree", "move", "--force", "--force", "--"]).arg(&entry.path).arg(dest);
        git::output(cmd)?;
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
        set_lock(repo, dest, None)?;
        return Ok(Taken::Taken { from: entry.path });
    }
    Ok(Taken::Missed { why: if far { "the base is far from the pool's" } else { "every ready worktree has changes" } })
}

/// Marks the ready worktree at `path` [`CHANGED`]: someone wrote in it.
fn set_aside(repo: &Repository, path: &Path) -> Result<(), SessionError> {
    tracing::warn!(path = %path.display(), "a pooled worktree has changes; left alone (`tandem doctor`)");
    let _ = set_lock(repo, path, None);
    set_lock(repo, path, Some(CHANGED))
}

/// Whether the trees of `from` and `to` differ in more than half the
/// files of the pooled worktree at `path` (its index's entry count), or
/// in a `.gitattributes` file.
fn is_far(repo: &Repository, path: &Path, from: &str, to: &str) -> Result<bool, SessionError> {
    let mut cmd = git::command(&repo.root);
    cmd.args(["diff-tree", "-r", "--no-renames", "--name-only", "-z", from, to]);
    let Ok(out) = git::output(cmd) else { return Ok(true) };
    let changed: Vec<&[u8]> = out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()).collect();
    // A changed `.gitattributes` changes how unchanged files are checked
    // out (line endings, filters), which a switch does not redo.
    if changed.iter().any(|p| p.rsplit(|b| *b == b'/').next() == Some(b".gitattributes".as_slice())) {
        return Ok(true);
    }
    let files = index_entries(path).unwrap_or(0);
    Ok(changed.len().saturating_mul(2) > files.max(1))
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
/// tracked file, no untracked file, no ignored file, and no index entry
/// marked skip-worktree or assume-unchanged (which hide a change from
/// `git status`; `git ls-files -v` tags every other entry `H`).
fn is_clean(path: &Path) -> Result<bool, SessionError> {
    let mut cmd = git::command(path);
    cmd.args(["status", "--porcelain", "-z", "--untracked-files=all", "--ignored=matching"]);
    if !git::output(cmd)?.stdout.is_empty() {
        return Ok(false);
    }
    let mut cmd = git::command(path);
    cmd.args(["ls-files", "-v", "-z"]);
    Ok(git::output(cmd)?.stdout.split(|b| *b == 0).filter(|e| !e.is_empty()).all(|e| e.starts_with(b"H ")))
}

/// What [`tidy`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tidied {
    /// Folders removed: half-made leftovers, unready or ready ones beyond
    /// the size or far from the base, none written in.
    pub removed: Vec<PathBuf>,
    /// Ready worktrees kept.
    pub ready: usize,
    /// Pooled worktrees someone wrote in (or locked, or a folder git does
    /// not list): left alone.
    pub changed: Vec<PathBuf>,
    /// Where the removed folders were moved to: the caller deletes each
    /// with [`delete`], outside the repository's lock.
    pub aside: Vec<PathBuf>,
}

/// Removes from the pool of `repo` what is half made or unready (unless
/// `busy` names it: being made or deleted), the ready ones beyond `keep`,
/// and ready ones far from `base`; never a worktree anything was written
/// in (such a one is locked [`CHANGED`] and left alone). Runs under the
/// repository's lock (a [`take`] must not pick what this removes); the
/// worktrees it removes are moved aside, and the caller deletes them
/// ([`Tidied::aside`], [`delete`]) once it has let the lock go.
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
        match entry.kind {
            EntryKind::Changed => {
                done.changed.push(entry.path);
                continue;
            }
            EntryKind::Ready => {
                let commit = entry.commit.as_deref().unwrap_or_default();
                let near = match base {
                    Some(base) if base != commit => !is_far(repo, &entry.path, commit, base)?,
                    _ => true,
                };
                if near && done.ready < keep as usize {
                    done.ready += 1;
                    continue;
                }
            }
            EntryKind::Unready | EntryKind::Half => {}
        }
        let whole = matches!(entry.kind, EntryKind::Ready | EntryKind::Unready);
        if whole && !is_clean(&entry.path)? {
            set_aside(repo, &entry.path)?;
            done.changed.push(entry.path);
            continue;
        }
        let aside = discard(repo, &entry.path, entry.kind);
        // Looked at again once moved: what someone wrote between the look
        // above and the move went with it, and brings it back. A write by
        // path after the move fails (the folder is gone); a process whose
        // working folder is inside follows the move, and what it writes
        // before the deletion is not looked at again.
        if let Some(moved) = aside.as_deref().filter(|a| whole && !is_clean(a).unwrap_or(false)) {
            put_back(repo, moved, &entry.path);
            done.changed.push(entry.path);
            continue;
        }
        done.aside.extend(aside);
        done.removed.push(entry.path);
    }
    Ok(done)
}

/// Moves the pooled worktree [`discard`] set aside at `aside` back to
/// `path` and locks it [`CHANGED`]: someone wrote in it. When `path` is
/// taken meanwhile, it goes to `kept-NAME` beside it instead (not
/// `.gone-…`, which [`tidy`] removes); one git cannot move is renamed.
/// Errors are logged; one that stays `.gone-NAME` is locked [`CHANGED`],
/// which [`status`] leaves alone.
fn put_back(repo: &Repository, aside: &Path, path: &Path) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let to = if path.exists() { path.with_file_name(format!("kept-{name}")) } else { path.to_path_buf() };
    let mut cmd = git::command(&repo.root);
    cmd.args(["worktree", "move", "--"]).arg(aside).arg(&to);
    let at = match git::output(cmd) {
        Ok(_) => to,
        // Not a worktree git can move (its record was pruned): the folder
        // is renamed, so no `.gone-` name marks it for removal; `status`
        // then calls it changed, as any unlisted folder with files.
        Err(_) if std::fs::rename(aside, &to).is_ok() => to,
        Err(e) => {
            tracing::error!(error = %e, path = %aside.display(), "cannot put back a pooled worktree someone wrote in");
            aside.to_path_buf()
        }
    };
    if let Err(e) = set_aside(repo, &at) {
        tracing::error!(error = ?e, path = %at.display(), "cannot lock a pooled worktree someone wrote in");
    }
}

/// Takes the pooled folder at `path` out of the pool, whatever `kind`
/// of [`Entry`] it is, and returns where it now is, for [`delete`]: a
/// whole worktree is unlocked and moved aside by git (`git worktree
/// move` to `.gone-NAME` in the pool's folder, which [`status`] lists as
/// half made until it is gone); a half-made one is unlocked and its
/// folder renamed aside, and git's record of it pruned (`git worktree
/// prune`: a checkout cut short has no `.git` file for git to move it
/// by). Errors are logged (`doctor` shows what is left).
fn discard(repo: &Repository, path: &Path, kind: EntryKind) -> Option<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.starts_with(".gone-") {
        return Some(path.to_path_buf());
    }
    let aside = path.with_file_name(format!(".gone-{name}"));
    let _ = set_lock(repo, path, None);
    if kind != EntryKind::Half {
        let mut cmd = git::command(&repo.root);
        cmd.args(["worktree", "move", "--"]).arg(path).arg(&aside);
        match git::output(cmd) {
            Ok(_) => return Some(aside),
            Err(e) => tracing::warn!(error = %e, path = %path.display(), "cannot move a pooled worktree aside"),
        }
    }
    let moved = path.exists() && std::fs::rename(path, &aside).is_ok();
    if let Err(e) = git::worktree_prune(&repo.root) {
        tracing::warn!(error = %e, "cannot prune a removed pooled worktree");
    }
    moved.then_some(aside)
}

/// Removes the pool's folder of `repo`, and `.pool` above it, when they
/// are empty (the pool is off and nothing is left in it).
pub fn remove_if_empty(repo: &Repository, worktrees: &Path) {
    let dir = pool_dir(worktrees, repo);
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_dir(worktrees.join(".pool"));
}

/// The pool size in effect for `config`: `[worktrees] pool`, or 0 when a
/// `hooks.worktree_create` command makes the worktrees (a pooled one
/// would never be taken).
#[must_use]
pub fn size(config: &Config) -> u32 {
    if config.hooks.worktree_create.trim().is_empty() { config.worktrees.pool } else { 0 }
}

/// Deletes a folder [`tidy`] or [`make`] set aside: `git worktree remove
/// --force --force` when git still lists it (which deletes git's record
/// with it), else the folder alone.
pub fn delete(repo: &Repository, aside: &Path) {
    let listed = git::worktree_list(&repo.root).is_ok_and(|l| l.iter().any(|w| same_path(&w.path, aside)));
    if listed && git::worktree_remove(&repo.root, aside, true).is_ok() {
        return;
    }
    super::end::delete_tree(aside);
}

/// What `tandem doctor` says of the pool of `repo` (folders in `busy`
/// are being made or deleted, and are not findings): a folder left half
/// made or never made ready (removed with `fix`, when nothing was
/// written in it), and a pooled folder someone wrote in
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
        let changed = || crate::model::Finding {
            session: None,
            problem: format!(
                "pooled worktree {shown} has changes (or is locked by someone); `tandem new` never hands it out"
            ),
            remedy: format!(
                "left alone: look through it, then `git worktree unlock {shown}` and `git worktree remove --force {shown}`"
            ),
            fixed: false,
        };
        match entry.kind {
            EntryKind::Half | EntryKind::Unready => {
                if entry.kind == EntryKind::Unready && !is_clean(&entry.path)? {
                    if fix {
                        set_aside(repo, &entry.path)?;
                    }
                    findings.push(changed());
                    continue;
                }
                let fixed = fix && {
                    if let Some(aside) = discard(repo, &entry.path, entry.kind) {
                        delete(repo, &aside);
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
            EntryKind::Changed => findings.push(changed()),
            EntryKind::Ready => {}
        }
    }
    Ok(findings)
}
