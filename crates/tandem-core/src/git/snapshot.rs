//! Snapshots: the tree of a whole working tree (untracked files too),
//! written through a temporary index so the agent's own is untouched,
//! and commits of it that are no branch's (archives, checkpoints).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{GitError, add_all_pathspec, command, output, read, resolve_commit};

/// The tree of the whole working tree of `worktree` (tracked changes and
/// untracked files, ignored files excepted), written through a temporary
/// index in `scratch` so the agent's own index is untouched. What git
/// cannot add (a nested repository with no commit, an unreadable file)
/// is left out, with a warning in the log.
///
/// # Errors
/// As [`output`].
pub fn worktree_tree(worktree: &Path, scratch: &Path) -> Result<String, GitError> {
    worktree_tree_with(worktree, scratch, &[])
}

/// [`worktree_tree`] when the paths whose worktree file differs from the
/// index are known (`paths`, as `git status --porcelain` listed them:
/// [`super::parse::StatusCounts::unstaged_paths`]): the temporary copy of
/// the index gets `git add --all` of these paths alone (literal
/// pathspecs, NUL-separated on stdin), so git neither stats the other
/// tracked files nor walks for untracked ones. The tree equals
/// [`worktree_tree`]'s as long as `paths` is what `git status` says now
/// (an index entry not listed matches its file; an untracked file not
/// listed does not exist or is ignored).
///
/// # Errors
/// As [`output`]; a listed path that matches nothing now (deleted from
/// the worktree and the index since) fails, and so does a sandboxed
/// session's worktree (its gitlinks are left out by pathspec magic that
/// literal paths cannot carry): the caller then walks the whole worktree.
pub fn worktree_tree_of_paths(worktree: &Path, scratch: &Path, paths: &[String]) -> Result<String, GitError> {
    if super::is_sandboxed_worktree(worktree) {
        return Err(GitError::Failed {
            args: "snapshot of listed paths".into(),
            code: None,
            stderr: "a sandboxed worktree is snapshotted whole".into(),
        });
    }
    let own_index = PathBuf::from(read(worktree, &["rev-parse", "--path-format=absolute", "--git-path", "index"])?);
    // Named as [`trees`] names its copies, which `sweep_scratch` knows.
    let index: PathBuf =
        scratch.join(format!("snapshot-index-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_file(&index);
    let result = (|| {
        std::fs::copy(&own_index, &index).map_err(|error| GitError::Spawn { error })?;
        if !paths.is_empty() {
            let mut add = command(worktree);
            add.env("GIT_INDEX_FILE", &index).args([
                "--literal-pathspecs",
                "add",
                "--all",
                "--ignore-errors",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
            ]);
            let input: Vec<u8> = paths.iter().flat_map(|p| p.bytes().chain([0])).collect();
            match super::output_with_stdin(add, &input) {
                // 1: what git could not add is left out, as `add_what_can_be`.
                Ok(_) | Err(GitError::Failed { code: Some(1), .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let mut write = command(worktree);
        write.env("GIT_INDEX_FILE", &index).arg("write-tree");
        Ok(String::from_utf8_lossy(&output(write)?.stdout).trim().to_owned())
    })();
    let _ = std::fs::remove_file(&index);
    let _ = std::fs::remove_file(index.with_extension("lock"));
    result
}

/// [`worktree_tree`] plus the ignored files `forced` (paths relative to
/// the worktree, added with `git add --force`).
fn worktree_tree_with(worktree: &Path, scratch: &Path, forced: &[PathBuf]) -> Result<String, GitError> {
    let own_index = PathBuf::from(read(worktree, &["rev-parse", "--path-format=absolute", "--git-path", "index"])?);
    let has_head = resolve_commit(worktree, "HEAD")?.is_some();
    Ok(trees(worktree, scratch, &own_index, has_head, forced)?.1)
}

/// The tree of the index as the agent left it (`None` when it has
/// unmerged entries, or there is none) and the tree of the whole working
/// tree, both through one temporary copy of the index in `scratch`:
/// `write-tree` of the copy first, then `git add --all` into it (its stat
/// data lets git skip the files that did not change instead of hashing
/// all) and `write-tree` again. `own_index`: the worktree's index file.
fn trees(
    worktree: &Path,
    scratch: &Path,
    own_index: &Path,
    has_head: bool,
    forced: &[PathBuf],
) -> Result<(Option<String>, String), GitError> {
    // One index per thread: snapshots of several worktrees run at once.
    let index: PathBuf =
        scratch.join(format!("snapshot-index-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_file(&index);
    let with_index = |args: &[&str]| {
        let mut cmd = command(worktree);
        cmd.env("GIT_INDEX_FILE", &index).args(args);
        cmd
    };
    let result = (|| {
        let index_tree = if std::fs::copy(own_index, &index).is_ok() {
            match output(with_index(&["write-tree"])) {
                Ok(out) => Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
                Err(GitError::Failed { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            if has_head {
                output(with_index(&["read-tree", "HEAD"]))?;
            }
            None
        };
        let mut add = vec!["add".to_owned(), "--all".to_owned(), "--ignore-errors".to_owned()];
        add.extend(add_all_pathspec(worktree)?);
        add_what_can_be(|| with_index(&add.iter().map(String::as_str).collect::<Vec<_>>()))?;
        if !forced.is_empty() {
            // As paths, not text: a name need not be UTF-8.
            add_what_can_be(|| {
                let mut add = with_index(&["--literal-pathspecs", "add", "--force", "--ignore-errors", "--"]);
                add.args(forced);
                add
            })?;
        }
        let tree = String::from_utf8_lossy(&output(with_index(&["write-tree"]))?.stdout).trim().to_owned();
        Ok((index_tree, tree))
    })();
    let _ = std::fs::remove_file(&index);
    let _ = std::fs::remove_file(index.with_extension("lock"));
    result
}

/// Runs a `git add --ignore-errors`: what git cannot add (a nested
/// repository with no commit, an unreadable file; git exits 1) is left
/// out with a warning in the log, rather than failing the snapshot whose
/// purpose is to keep everything else (an agent's `git init fixture`
/// made `rm --force` and `archive` fail).
///
/// A file or folder deleted between git listing its folder and reading
/// it stops `git add` outright ("unable to stat"): a build or a hostile
/// agent churning files made checkpoints and rewinds fail. It is run
/// again then, a few times.
fn add_what_can_be(cmd: impl Fn() -> Command) -> Result<(), GitError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match output(cmd()) {
            Ok(_) => return Ok(()),
            Err(GitError::Failed { code: Some(1), stderr, .. }) => {
                tracing::warn!(%stderr, "the snapshot leaves out what git could not add");
                return Ok(());
            }
            Err(GitError::Failed { stderr, .. }) if tries < 5 && stderr.contains("unable to stat") => {
                tracing::debug!(%stderr, "a file went while git added it; adding again");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Makes a commit of the whole working tree of `worktree`
/// ([`worktree_tree`]) whose first parent is `HEAD`. Nothing points at
/// the commit until the caller stores it in a ref.
///
/// Everything else the worktree holds that the tree alone would lose
/// becomes a further parent, so one ref keeps it reachable:
/// - the index as the agent left it, when it differs from both `HEAD`
///   and the working tree (a staged change with an unstaged one on top),
///   as a commit whose parent is `HEAD` (an index with conflicts cannot be
///   written as a tree and is left out: the working tree has its files);
/// - each commit of `keep` that is not `HEAD` (the session's branch tip
///   when `HEAD` is detached or mid-rebase).
///
/// `scratch`: a directory for the temporary indexes. Returns the commit id.
///
/// # Errors
/// As [`output`].
pub fn snapshot_commit(worktree: &Path, scratch: &Path, message: &str, keep: &[String]) -> Result<String, GitError> {
    snapshot_commit_with(worktree, scratch, message, keep, &[])
}

/// [`snapshot_commit`] whose tree also holds the ignored files `forced`
/// (relative paths: the changed `.worktreeinclude` files, which the
/// working tree's `git add --all` leaves out).
///
/// # Errors
/// As [`output`].
pub fn snapshot_commit_with(
    worktree: &Path,
    scratch: &Path,
    message: &str,
    keep: &[String],
    forced: &[PathBuf],
) -> Result<String, GitError> {
    let state = worktree_state(worktree, scratch, keep, forced)?;
    commit_state(worktree, &state, message)
}

/// What a snapshot commit is made of ([`worktree_state`]), before any
/// object but trees is written: enough to tell whether anything changed
/// since another snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeState {
    /// The whole working tree (untracked files too, ignored ones not;
    /// plus the forced ones).
    pub tree: String,
    /// `HEAD`'s commit, `None` before the first commit.
    pub head: Option<String>,
    /// `HEAD`'s tree.
    pub head_tree: Option<String>,
    /// The tree of the index as the agent left it; `None` when it cannot
    /// be written (unmerged entries) or there is none.
    pub index_tree: Option<String>,
    /// The commits `keep` named that are not `HEAD`.
    pub keep: Vec<String>,
}

/// Reads what a snapshot of `worktree` holds ([`snapshot_commit`] explains
/// each part) through a temporary index in `scratch`; the worktree, its
/// index and `HEAD` are not touched. `keep`: commits or refs (resolved
/// here; one that names nothing is left out). Four git commands: one
/// `rev-parse` (the index's path, `HEAD`, its tree, `keep`), `write-tree`,
/// `add --all`, `write-tree`.
///
/// # Errors
/// As [`output`].
pub fn worktree_state(
    worktree: &Path,
    scratch: &Path,
    keep: &[String],
    forced: &[PathBuf],
) -> Result<WorktreeState, GitError> {
    let path_args = ["rev-parse", "--path-format=absolute", "--git-path", "index"];
    let mut args: Vec<String> = path_args.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["HEAD^{commit}".to_owned(), "HEAD^{tree}".to_owned()]);
    // Refs resolved in the same process; an option-like name is no rev.
    args.extend(keep.iter().filter(|k| !k.starts_with('-')).map(|k| format!("{k}^{{commit}}")));
    let (own_index, head, head_tree, kept) = match read(worktree, &args) {
        Ok(out) => {
            let mut lines = out.lines().map(str::to_owned);
            let own_index = PathBuf::from(lines.next().unwrap_or_default());
            (own_index, lines.next(), lines.next(), lines.collect::<Vec<_>>())
        }
        // No commit yet (an unborn branch), or a kept ref that is gone:
        // one at a time.
        Err(GitError::Failed { .. }) => {
            let own_index = PathBuf::from(read(worktree, &path_args)?);
            let head = resolve_commit(worktree, "HEAD")?;
            let head_tree = match &head {
                Some(h) => resolve_tree(worktree, h)?,
                None => None,
            };
            let mut kept = Vec::new();
            for k in keep {
                kept.extend(resolve_commit(worktree, k)?);
            }
            (own_index, head, head_tree, kept)
        }
        Err(e) => return Err(e),
    };
    let (index_tree, tree) = trees(worktree, scratch, &own_index, head.is_some(), forced)?;
    let mut keep: Vec<String> = Vec::new();
    for commit in kept {
        if Some(&commit) != head.as_ref() && !keep.contains(&commit) {
            keep.push(commit);
        }
    }
    Ok(WorktreeState { tree, head, head_tree, index_tree, keep })
}

/// Writes the snapshot commit of `state` ([`snapshot_commit`]): first
/// parent `HEAD`, then the index when it differs from both `HEAD` and
/// the tree, then the kept commits. Returns its id.
///
/// # Errors
/// As [`output`].
pub fn commit_state(worktree: &Path, state: &WorktreeState, message: &str) -> Result<String, GitError> {
    let mut parents: Vec<String> = state.head.iter().cloned().collect();
    if let Some(index) = state.index_tree.as_ref().filter(|t| **t != state.tree && Some(*t) != state.head_tree.as_ref())
    {
        let message = "tandem: the index as the session left it";
        parents.push(commit_tree(worktree, index, message, state.head.as_slice())?);
    }
    for commit in &state.keep {
        if !parents.contains(commit) {
            parents.push(commit.clone());
        }
    }
    commit_tree(worktree, &state.tree, message, &parents)
}

/// `git commit-tree TREE -p PARENT… -m MESSAGE`, with a stand-in identity
/// when none is configured (a snapshot must never fail for want of one).
fn commit_tree(dir: &Path, tree: &str, message: &str, parents: &[String]) -> Result<String, GitError> {
    let commit = |stand_in: bool| {
        let mut cmd = command(dir);
        if stand_in {
            for var in ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"] {
                cmd.env(var, "tandem");
            }
            for var in ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"] {
                cmd.env(var, "tandem@localhost");
            }
        }
        cmd.args(["commit-tree", tree, "-m", message]);
        for parent in parents {
            cmd.args(["-p", parent]);
        }
        output(cmd).map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    // The stand-in only when git has no identity (asking first would cost
    // a process on every snapshot).
    match commit(false) {
        Err(GitError::Failed { .. }) if read(dir, &["var", "GIT_COMMITTER_IDENT"]).is_err() => commit(true),
        done => done,
    }
}

/// The tree of `commit`, `None` when it does not resolve.
///
/// # Errors
/// [`GitError::Spawn`], and git failures other than "no such commit".
pub fn resolve_tree(dir: &Path, commit: &str) -> Result<Option<String>, GitError> {
    let spec = format!("{commit}^{{tree}}");
    match read(dir, &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]) {
        Ok(oid) => Ok(Some(oid)),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The tree the index of `worktree` holds (`git write-tree` on a copy in
/// `scratch`, so the index itself is not touched); `None` when it cannot
/// be written (unmerged entries) or there is no index.
///
/// # Errors
/// [`GitError::Spawn`] and I/O failures reading git's paths.
pub fn index_tree(worktree: &Path, scratch: &Path) -> Result<Option<String>, GitError> {
    let own = PathBuf::from(read(worktree, &["rev-parse", "--path-format=absolute", "--git-path", "index"])?);
    let copy = scratch.join(format!("index-copy-{}-{:?}", std::process::id(), std::thread::current().id()));
    if std::fs::copy(&own, &copy).is_err() {
        return Ok(None);
    }
    let mut cmd = command(worktree);
    cmd.env("GIT_INDEX_FILE", &copy).args(["write-tree"]);
    let written = output(cmd);
    let _ = std::fs::remove_file(&copy);
    match written {
        Ok(out) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The names of the temporary index files snapshots write in their
/// scratch folder, each followed by `-<pid>-<thread>`.
const SCRATCH_PREFIXES: [&str; 2] = ["snapshot-index-", "index-copy-"];

/// Deletes the temporary index files (and git's `.lock` beside them) a
/// snapshot left in `scratch` when its process was killed mid-way: those
/// whose process no longer runs. Returns how many went.
pub fn sweep_scratch(scratch: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(scratch) else { return 0 };
    let mut swept = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = SCRATCH_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let alive = pid == std::process::id().cast_signed()
            || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if alive {
            continue;
        }
        // A rewind's staging folder too (`…-rewind.d`).
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
        if removed.is_ok() {
            swept += 1;
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let mut cmd = command(dir);
        cmd.args(["-c", "user.name=t", "-c", "user.email=t@t"]).args(args);
        String::from_utf8_lossy(&output(cmd).expect("git").stdout).trim().to_owned()
    }

    /// Issue 23: snapshotting only the paths `git status` listed gives the
    /// tree a walk of the whole worktree gives, whatever the change:
    /// edited, deleted, made executable, staged then edited again, staged
    /// alone, renamed, untracked files, an untracked folder with an
    /// ignored file inside, names with spaces and newlines.
    #[test]
    fn the_listed_paths_snapshot_as_the_whole_worktree_does() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wt = tmp.path().join("wt");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&scratch).expect("scratch");
        std::fs::create_dir_all(wt.join("src/deep")).expect("dirs");
        git(tmp.path(), &["init", "-q", "wt"]);
        for name in ["a.txt", "b.txt", "c.sh", "d.txt", "e.txt", "old name.txt", "src/deep/f.txt", "line\nbreak.txt"] {
            std::fs::write(wt.join(name), format!("{name}\n")).expect("write");
        }
        std::fs::write(wt.join(".gitignore"), "*.log\n").expect("write");
        git(&wt, &["add", "--all"]);
        git(&wt, &["commit", "-q", "-m", "base"]);

        std::fs::write(wt.join("a.txt"), "edited\n").expect("edit");
        std::fs::remove_file(wt.join("b.txt")).expect("delete");
        std::fs::set_permissions(wt.join("c.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        std::fs::write(wt.join("d.txt"), "staged\n").expect("stage");
        git(&wt, &["add", "d.txt"]);
        std::fs::write(wt.join("d.txt"), "staged, then edited\n").expect("edit again");
        std::fs::write(wt.join("e.txt"), "staged alone\n").expect("stage");
        git(&wt, &["add", "e.txt"]);
        git(&wt, &["mv", "old name.txt", "new name.txt"]);
        std::fs::write(wt.join("line\nbreak.txt"), "edited\n").expect("edit");
        std::fs::write(wt.join("untracked file.txt"), "new\n").expect("new");
        std::fs::create_dir_all(wt.join("new dir/inner")).expect("dir");
        std::fs::write(wt.join("new dir/inner/g.txt"), "g\n").expect("g");
        std::fs::write(wt.join("new dir/build.log"), "ignored\n").expect("log");
        std::fs::write(wt.join("src/deep/h.txt"), "h\n").expect("h");

        let status = crate::git::status(&wt).expect("status");
        assert!(status.unstaged_paths.len() >= 7, "{:?}", status.unstaged_paths);
        let listed = worktree_tree_of_paths(&wt, &scratch, &status.unstaged_paths).expect("listed paths");
        let whole = worktree_tree(&wt, &scratch).expect("whole worktree");
        assert_eq!(listed, whole, "listed {:?}", status.unstaged_paths);
        // Nothing listed: the index as it is.
        let clean = tempfile::tempdir().expect("tempdir");
        git(clean.path(), &["init", "-q"]);
        std::fs::write(clean.path().join("x"), "x\n").expect("write");
        git(clean.path(), &["add", "x"]);
        assert_eq!(
            worktree_tree_of_paths(clean.path(), &scratch, &[]).expect("empty"),
            worktree_tree(clean.path(), &scratch).expect("whole")
        );
        // A listed path gone from the worktree and the index since: an
        // error, so the caller walks the whole worktree.
        let gone = vec!["no such file".to_owned()];
        assert!(worktree_tree_of_paths(&wt, &scratch, &gone).is_err());
        assert!(std::fs::read_dir(&scratch).expect("scratch").next().is_none(), "no temporary index left");
    }
}
