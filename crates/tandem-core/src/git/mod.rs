// Whole on purpose (issue 18): the command builder and the small commands
// every part calls; worktree and snapshot commands are in their own files.
//! The git CLI, wrapped: the only place tandem builds a `git` command.
//!
//! Every command gets an argument vector (never a shell string), `--`
//! or `--end-of-options` before user-supplied names, a scrubbed
//! environment (`GIT_DIR` and friends removed, as a git hook would leave
//! them pointing elsewhere), `LC_ALL=C`, `GIT_TERMINAL_PROMPT=0`, no stdin,
//! and `core.fsmonitor=false`. Reads pass `--no-optional-locks` so they never
//! take the index lock from under a running agent. Output that carries
//! paths is asked for NUL-separated and parsed by the pure functions in
//! [`parse`]. Worktrees are in [`worktree`], snapshots of a working tree
//! in [`snapshot`]; both are re-exported here.

pub mod parse;
mod snapshot;
mod worktree;

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use parse::{LsFilesEntry, StatusCounts, WorktreeEntry};
pub use snapshot::{
    WorktreeState, commit_state, index_tree, resolve_tree, snapshot_commit, snapshot_commit_with, sweep_scratch,
    worktree_state, worktree_tree, worktree_tree_of_paths,
};
pub use worktree::{
    worktree_add, worktree_add_existing, worktree_list, worktree_move, worktree_of_branch, worktree_prune,
    worktree_remove,
};

/// Environment variables that make git look at another repository than
/// the one `-C` names; set inside git hooks (DESIGN.md, "Git traps").
const DISCOVERY_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_PREFIX",
];

/// Errors from running git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started (not installed, or not on `PATH`).
    #[error("cannot run git; install git 2.30 or newer and put it on PATH")]
    Spawn {
        #[source]
        error: io::Error,
    },
    /// git exited non-zero; `stderr` is its message, trimmed.
    #[error("`git {args}` failed: {stderr}")]
    Failed { args: String, code: Option<i32>, stderr: String },
}

/// A git command rooted at `dir` (`git -C dir`), environment scrubbed.
#[must_use]
pub fn command(dir: &Path) -> Command {
    let mut cmd = if is_sandboxed_worktree(dir) {
        // A sandboxed agent's worktree may hold what makes git block: a
        // nested repository whose `HEAD` is a FIFO (git reads it to tell
        // a nested repository from a folder). coreutils' `timeout` kills
        // git's whole process group past the deadline.
        let mut cmd = Command::new("timeout");
        cmd.args(["--signal=KILL", SANDBOXED_GIT_TIMEOUT, "git"]);
        cmd
    } else {
        Command::new("git")
    };
    cmd.arg("-C").arg(dir).args(["-c", "core.fsmonitor=false"]);
    if is_sandboxed_worktree(dir) {
        // A sandboxed agent can stage a nested repository of its making
        // as a gitlink; `git status` and `git diff` would run `git status`
        // inside it to see whether it is dirty (and with it a filter that
        // repository's config names), and read its `HEAD`. tandem leaves
        // gitlinks of a sandboxed worktree alone.
        cmd.args(["-c", "diff.ignoreSubmodules=all"]);
    }
    for var in DISCOVERY_VARS {
        cmd.env_remove(var);
    }
    cmd.env("LC_ALL", "C").env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
    cmd
}

/// The longest a git command tandem runs in a sandboxed session's
/// worktree may take (`timeout(1)`'s duration), seconds.
const SANDBOXED_GIT_TIMEOUT: &str = "40";

/// The file in a linked worktree's admin folder that marks a sandboxed
/// session's worktree (made by tandem; the sandbox does not see the
/// repository's admin folder).
pub const SANDBOX_MARK: &str = "tandem-sandbox";

/// Whether `dir` is the top of a sandboxed session's worktree: its `.git`
/// file (read-only inside the sandbox) names an admin folder holding
/// [`SANDBOX_MARK`].
#[must_use]
pub fn is_sandboxed_worktree(dir: &Path) -> bool {
    let link = dir.join(".git");
    if !std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_file()) {
        return false;
    }
    std::fs::read_to_string(&link)
        .ok()
        .and_then(|t| t.trim().strip_prefix("gitdir:").map(|p| dir.join(p.trim()).join(SANDBOX_MARK)))
        .is_some_and(|mark| mark.exists())
}

/// The pathspec of an `add --all` over the whole of `worktree`: `-- .`,
/// and in a sandboxed session's worktree ([`is_sandboxed_worktree`]) one
/// `:(exclude)` per gitlink in its index. `git add` runs `git status` in
/// each gitlink's folder to see whether it changed, whatever
/// `diff.ignoreSubmodules` says, and a nested repository the agent made
/// would bring its own config (a `filter.*.clean`) to that `status`. Such
/// a gitlink stays as the index has it.
///
/// # Errors
/// As [`output`].
pub fn add_all_pathspec(worktree: &Path) -> Result<Vec<String>, GitError> {
    let mut out = vec!["--".to_owned(), ".".to_owned()];
    if is_sandboxed_worktree(worktree) {
        let mut cmd = command(worktree);
        cmd.args(["--no-optional-locks", "ls-files", "--stage", "-z"]);
        let listed = output(cmd)?.stdout;
        for entry in listed.split(|b| *b == 0) {
            let entry = String::from_utf8_lossy(entry);
            if let Some((meta, path)) = entry.split_once('\t')
                && meta.starts_with("160000 ")
            {
                out.push(format!(":(exclude,literal){path}"));
            }
        }
    }
    Ok(out)
}

/// Runs `cmd` and returns its output, or [`GitError::Failed`] with stderr.
///
/// # Errors
/// [`GitError::Spawn`] when git cannot start, [`GitError::Failed`] when it
/// exits non-zero.
pub fn output(mut cmd: Command) -> Result<Output, GitError> {
    tracing::debug!(cmd = ?cmd, "spawning git");
    let all: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    // What [`command`] put first: `-C DIR -c core.fsmonitor=false`,
    // and for a sandboxed worktree `timeout` before and a `-c` after.
    let start = all.iter().rposition(|a| {
        a.starts_with("core.fsmonitor=") || a.starts_with("diff.ignoreSubmodules=") || a.starts_with("core.hooksPath=")
    });
    let args = &all[start.map_or(0, |i| i + 1)..];
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|error| GitError::Spawn { error })?;
    crate::fault::git_started(args, &child);
    let out = child.wait_with_output().map_err(|error| GitError::Spawn { error })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(GitError::Failed { args: args.join(" "), code: out.status.code(), stderr: reason(&out) })
    }
}

/// Why a git command failed, never empty: its stderr, else its stdout
/// (`git commit` says "nothing to commit" there), else its exit status.
fn reason(out: &Output) -> String {
    [&out.stderr, &out.stdout]
        .into_iter()
        .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
        .find(|text| !text.is_empty())
        .unwrap_or_else(|| format!("it exited with {} and printed nothing", out.status))
}

/// Runs `git -C dir ARGS…` and returns stdout with the trailing newline
/// removed.
///
/// # Errors
/// As [`output`].
pub fn run<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<String, GitError> {
    let mut cmd = command(dir);
    cmd.args(args);
    let out = output(cmd)?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    while text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Like [`run`] for read-only commands: adds `--no-optional-locks`.
///
/// # Errors
/// As [`output`].
pub fn read<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<String, GitError> {
    let mut full: Vec<&OsStr> = vec![OsStr::new("--no-optional-locks")];
    full.extend(args.iter().map(AsRef::as_ref));
    run(dir, &full)
}

/// Runs a command whose exit status is the answer (e.g. `show-ref
/// --verify --quiet`): `Ok(true)` on 0, `Ok(false)` on 1.
///
/// # Errors
/// [`GitError::Spawn`], or [`GitError::Failed`] for exit codes above 1.
pub fn test<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<bool, GitError> {
    match read(dir, args) {
        Ok(_) => Ok(true),
        Err(GitError::Failed { code: Some(1), .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The commit `rev` names (`rev-parse --verify rev^{commit}`), or `None`
/// when it names no commit.
///
/// # Errors
/// [`GitError::Spawn`].
pub fn resolve_commit(dir: &Path, rev: &str) -> Result<Option<String>, GitError> {
    let spec = format!("{rev}^{{commit}}");
    match read(dir, &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]) {
        Ok(oid) => Ok(Some(oid)),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether git accepts `name` as a branch name (`git check-ref-format
/// --branch`). tandem's own rules in [`crate::session::slugs`] are
/// stricter: git accepts `@`, for one.
///
/// # Errors
/// [`GitError::Spawn`].
pub fn is_valid_branch_name(dir: &Path, name: &str) -> Result<bool, GitError> {
    match read(dir, &["check-ref-format", "--branch", name]) {
        Ok(_) => Ok(true),
        Err(GitError::Failed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `refs/heads/<branch>` exists.
///
/// # Errors
/// [`GitError::Spawn`].
pub fn branch_exists(dir: &Path, branch: &str) -> Result<bool, GitError> {
    test(dir, &["show-ref", "--verify", "--quiet", &format!("refs/heads/{branch}")])
}

/// The short name of the branch `HEAD` points at in `dir`'s worktree, or
/// `None` when `HEAD` is detached or unborn-and-unnamed.
///
/// # Errors
/// [`GitError::Spawn`].
pub fn current_branch(dir: &Path) -> Result<Option<String>, GitError> {
    match read(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"]) {
        Ok(name) if !name.is_empty() => Ok(Some(name)),
        Ok(_) | Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The remote's default branch (`refs/remotes/origin/HEAD`, short name
/// without the remote), else `init.defaultBranch`, else `None`.
///
/// # Errors
/// [`GitError::Spawn`].
pub fn default_branch(dir: &Path) -> Result<Option<String>, GitError> {
    match read(dir, &["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"]) {
        Ok(name) => {
            if let Some((_, branch)) = name.split_once('/') {
                return Ok(Some(branch.to_owned()));
            }
        }
        Err(GitError::Failed { .. }) => {}
        Err(e) => return Err(e),
    }
    match read(dir, &["config", "--get", "init.defaultBranch"]) {
        Ok(name) if !name.is_empty() => Ok(Some(name)),
        Ok(_) | Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes `refs/heads/<branch>` (`git branch -D`). Callers check first
/// that nothing would be lost or snapshot it.
///
/// # Errors
/// As [`output`].
pub fn delete_branch(repo: &Path, branch: &str) -> Result<(), GitError> {
    run(repo, &["branch", "-D", "--", branch]).map(drop)
}

/// Counts of changed and untracked paths in a worktree (`git status
/// --porcelain=v2 -z`).
///
/// # Errors
/// As [`output`].
pub fn status(worktree: &Path) -> Result<StatusCounts, GitError> {
    let mut cmd = command(worktree);
    cmd.args(["--no-optional-locks", "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=normal"]);
    Ok(parse::status_counts(&output(cmd)?.stdout))
}

/// `(ahead, behind)`: commits on `branch` not on `base`, and on `base` not
/// on `branch` (`git rev-list --left-right --count base...branch`).
///
/// # Errors
/// As [`output`].
pub fn ahead_behind(repo: &Path, base: &str, branch: &str) -> Result<(u32, u32), GitError> {
    let range = format!("{base}...{branch}");
    let out = read(repo, &["rev-list", "--left-right", "--count", "--end-of-options", &range])?;
    parse::left_right_counts(&out).ok_or_else(|| GitError::Failed {
        args: format!("rev-list --left-right --count {range}"),
        code: None,
        stderr: format!("unexpected output {out:?}"),
    })
}

/// Commits reachable from `rev` that are in none of `bases` nor any remote
/// branch (`git rev-list --ignore-missing rev --not BASES… --remotes`),
/// newest first: the commits that deleting the branch would lose. Names
/// that resolve to nothing are skipped.
///
/// # Errors
/// As [`output`].
pub fn unique_commits(repo: &Path, rev: &str, bases: &[&str]) -> Result<Vec<String>, GitError> {
    // No `--end-of-options`: it would make `--not` a revision. Callers pass
    // full ref names and ids that `resolve_commit` accepted.
    // `--ignore-missing`: a name that no longer resolves (a deleted
    // branch, a base ref gone) is skipped instead of failing.
    let mut args = vec!["rev-list", "--ignore-missing", rev, "--not"];
    args.extend(bases);
    args.push("--remotes");
    let out = read(repo, &args)?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// An operation git has begun in `worktree` and not finished, as the
/// files git keeps in the worktree's own git folder say
/// (git-status(1)'s "You are currently rebasing" and its kin): `rebase`
/// (`rebase-merge/`, `rebase-apply/`), `merge` (`MERGE_HEAD`),
/// `cherry-pick`, `revert`, `bisect` (`BISECT_LOG`). `None` when none is.
///
/// # Errors
/// As [`output`].
pub fn operation_in_progress(worktree: &Path) -> Result<Option<&'static str>, GitError> {
    let dir = PathBuf::from(read(worktree, &["rev-parse", "--path-format=absolute", "--git-dir"])?);
    let marks = [
        ("rebase-merge", "rebase"),
        ("rebase-apply", "rebase"),
        ("MERGE_HEAD", "merge"),
        ("CHERRY_PICK_HEAD", "cherry-pick"),
        ("REVERT_HEAD", "revert"),
        ("BISECT_LOG", "bisect"),
    ];
    Ok(marks.iter().find(|(file, _)| dir.join(file).symlink_metadata().is_ok()).map(|(_, what)| *what))
}

/// The first 12 hex digits of an object id, as tandem prints them.
#[must_use]
pub fn short(oid: &str) -> &str {
    &oid[..oid.len().min(12)]
}

/// Points `refname` at `oid`, refusing to overwrite an existing ref
/// (`git update-ref <ref> <oid> ""`).
///
/// # Errors
/// As [`output`].
pub fn create_ref(repo: &Path, refname: &str, oid: &str) -> Result<(), GitError> {
    run(repo, &["update-ref", "-m", "tandem: archive", refname, oid, ""]).map(drop)
}

/// The repository's remotes, `origin` first when it exists.
///
/// # Errors
/// As [`output`].
pub fn remotes(repo: &Path) -> Result<Vec<String>, GitError> {
    let mut names: Vec<String> = read(repo, &["remote"])?.lines().map(str::to_owned).collect();
    names.sort_by_key(|n| n != "origin");
    Ok(names)
}

/// The remote's default branch as known locally
/// (`refs/remotes/<remote>/HEAD`, set by clone or `git remote set-head`),
/// e.g. `main`.
///
/// # Errors
/// As [`output`].
pub fn remote_head(repo: &Path, remote: &str) -> Result<Option<String>, GitError> {
    let symref = format!("refs/remotes/{remote}/HEAD");
    match read(repo, &["symbolic-ref", "--quiet", &symref]) {
        Ok(target) => Ok(target.strip_prefix(&format!("refs/remotes/{remote}/")).map(str::to_owned)),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs a network command (`fetch`, `remote set-head`), killing it after
/// `timeout`. `Err(message)` says why it failed, for a fallback notice.
pub fn run_with_timeout(repo: &Path, args: &[&str], timeout: std::time::Duration) -> Result<(), String> {
    let mut cmd = command(repo);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run git: {e}"))?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(_)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("failed");
                return Err(last.trim().to_owned());
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} ms", timeout.as_millis()));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The best common ancestor of two commits, if they have one.
///
/// # Errors
/// [`GitError::Spawn`], or a failure other than "no merge base".
pub fn merge_base(repo: &Path, a: &str, b: &str) -> Result<Option<String>, GitError> {
    match read(repo, &["merge-base", "--end-of-options", a, b]) {
        Ok(oid) => Ok(Some(oid)),
        Err(GitError::Failed { code: Some(1), .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A config value (`git config --get`), `None` when unset.
///
/// # Errors
/// [`GitError::Spawn`].
pub fn config_get(repo: &Path, key: &str) -> Result<Option<String>, GitError> {
    match read(repo, &["config", "--get", key]) {
        Ok(v) => Ok(Some(v)),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A config value (`git config --get`) as git sees it in `dir` when run
/// with exactly the environment `env` (an agent's, with its own `HOME`
/// and `GIT_CONFIG_*`) instead of tandem's; the discovery variables are
/// removed from it as [`command`] removes them. `None` when unset.
///
/// # Errors
/// [`GitError::Spawn`].
pub fn config_get_in_env(dir: &Path, key: &str, env: &[(String, String)]) -> Result<Option<String>, GitError> {
    let mut cmd = command(dir);
    cmd.env_clear();
    cmd.envs(env.iter().filter(|(k, _)| !DISCOVERY_VARS.contains(&k.as_str())).map(|(k, v)| (k, v)));
    cmd.env("LC_ALL", "C").env("GIT_TERMINAL_PROMPT", "0");
    cmd.args(["--no-optional-locks", "config", "--get", key]);
    match output(cmd) {
        Ok(out) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|v| !v.is_empty())),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Points `refs/heads/<branch>` at `oid`, creating it
/// (`git branch <branch> <oid>`), e.g. to bring back a branch deleted by
/// hand.
///
/// # Errors
/// As [`output`].
pub fn create_branch(repo: &Path, branch: &str, oid: &str) -> Result<(), GitError> {
    run(repo, &["branch", "--no-track", "--", branch, oid]).map(drop)
}

/// `git diff --shortstat <base>` in a worktree: the changes of commits and
/// working tree (tracked files) against `base`, e.g. ` 3 files changed,
/// 10 insertions(+), 2 deletions(-)`; empty when none.
///
/// # Errors
/// As [`output`].
pub fn diff_shortstat(worktree: &Path, base: &str) -> Result<String, GitError> {
    Ok(read(worktree, &["diff", "--shortstat", "--end-of-options", base])?.trim().to_owned())
}

/// One line per commit in `range` (`git log --oneline`), newest first, at
/// most `max`.
///
/// # Errors
/// As [`output`].
pub fn log_oneline(repo: &Path, range: &str, max: usize) -> Result<Vec<String>, GitError> {
    let max = format!("--max-count={max}");
    Ok(read(repo, &["log", "--oneline", "--no-decorate", &max, "--end-of-options", range])?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Every ref under `prefix` (e.g. `refs/tandem/archive/`) with its object.
///
/// # Errors
/// As [`output`].
pub fn refs_under(repo: &Path, prefix: &str) -> Result<Vec<(String, String)>, GitError> {
    Ok(read(repo, &["for-each-ref", "--format=%(refname) %(objectname)", prefix])?
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(r, o)| (r.to_owned(), o.to_owned())))
        .collect())
}

/// Deletes a ref (`git update-ref -d`).
///
/// # Errors
/// As [`output`].
pub fn delete_ref(repo: &Path, refname: &str) -> Result<(), GitError> {
    run(repo, &["update-ref", "-d", refname]).map(drop)
}

/// `dir`'s path below the top of its working tree, `/`-terminated, or `""`
/// at the top (`git rev-parse --show-prefix`).
///
/// # Errors
/// As [`output`]; [`GitError::Failed`] outside a working tree.
pub fn show_prefix(dir: &Path) -> Result<String, GitError> {
    read(dir, &["rev-parse", "--show-prefix"])
}

/// Where [`ls_others_ignored`] takes the patterns that decide "ignored".
#[derive(Debug, Clone, Copy)]
pub enum Excludes<'a> {
    /// The repository's own rules: `.gitignore` files, `.git/info/exclude`
    /// and `core.excludesFile` (`--exclude-standard`).
    Standard,
    /// Only the gitignore-syntax patterns of this file, anchored at the top
    /// of the working tree (`--exclude-from=FILE`).
    File(&'a Path),
}

/// Untracked paths under `dir` (a working tree's top) that `excludes`
/// matches: `git ls-files -z --others --ignored --directory`, relative to
/// `dir`. A directory whose untracked contents all match comes as one
/// entry with `dir: true`; when the directory itself matches git does not
/// look inside it (so a huge ignored `target/` costs one entry), otherwise
/// its contents follow it. Tracked files never appear. `pathspecs` limit
/// the walk, e.g. `:(exclude,top,glob)target/**` keeps git out of a
/// directory.
///
/// # Errors
/// As [`output`].
pub fn ls_others_ignored<S: AsRef<OsStr>>(
    dir: &Path,
    excludes: Excludes<'_>,
    pathspecs: &[S],
) -> Result<Vec<LsFilesEntry>, GitError> {
    let mut cmd = command(dir);
    cmd.args(["--no-optional-locks", "ls-files", "-z", "--others", "--ignored", "--directory"]);
    match excludes {
        Excludes::Standard => cmd.arg("--exclude-standard"),
        Excludes::File(file) => cmd.arg({
            let mut arg = std::ffi::OsString::from("--exclude-from=");
            arg.push(file);
            arg
        }),
    };
    cmd.arg("--");
    cmd.args(pathspecs);
    Ok(parse::ls_files_entries(&output(cmd)?.stdout))
}

/// Runs `cmd` with `input` on its stdin and returns its stdout.
///
/// # Errors
/// As [`output`].
pub fn output_with_stdin(mut cmd: Command, input: &[u8]) -> Result<Vec<u8>, GitError> {
    use std::io::Write as _;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|error| GitError::Spawn { error })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|error| GitError::Spawn { error })?;
    let _ = writer.join();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            args: format!("{:?}", cmd.get_args().skip(4).collect::<Vec<_>>()),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Renames branch `from` to `to` (`git branch -m`), also where it is
/// checked out: that worktree's HEAD follows, its files stay.
///
/// # Errors
/// As [`output`].
pub fn rename_branch(repo: &Path, from: &str, to: &str) -> Result<(), GitError> {
    run(repo, &["branch", "-m", "--", from, to]).map(drop)
}

/// Deletes `refs/heads/<branch>` if it exists (`git branch -D`, one
/// process); a missing branch is not an error.
/// Callers check first that nothing would be lost or snapshot it.
///
/// # Errors
/// As [`output`].
pub fn delete_branch_if_present(repo: &Path, branch: &str) -> Result<(), GitError> {
    match run(repo, &["branch", "-D", "--", branch]) {
        Err(GitError::Failed { stderr, .. }) if stderr.contains("not found") => Ok(()),
        other => other.map(drop),
    }
}

/// Branch names that are never a session's branch, whatever the config.
pub const ALWAYS_PROTECTED: &[&str] = &["main", "master", "develop"];

/// Whether `branch` is protected in the repository at `root`: one of
/// [`ALWAYS_PROTECTED`], one the config's `branch.protected` names
/// (`configured`), or the remote's default branch.
///
/// # Errors
/// [`GitError`] when the default branch cannot be read.
pub fn is_protected(root: &Path, configured: &[String], branch: &str) -> Result<bool, GitError> {
    Ok(ALWAYS_PROTECTED.contains(&branch)
        || configured.iter().any(|p| p == branch)
        || default_branch(root)?.as_deref() == Some(branch))
}
