//! Worktrees: add (on a new or an existing branch), remove, prune, list,
//! and which worktree has a branch checked out.

use std::path::{Path, PathBuf};

use super::{GitError, WorktreeEntry, command, output, parse, run};

/// `git worktree add --no-track -b <branch> <path> <base>`: a new branch at
/// `base` checked out in a new worktree at `path`. `--no-track` avoids the
/// `.git/config.lock` race between concurrent adds (DESIGN.md).
///
/// # Errors
/// As [`output`].
pub fn worktree_add(repo: &Path, path: &Path, branch: &str, base: &str) -> Result<(), GitError> {
    let mut cmd = command(repo);
    cmd.args(["worktree", "add", "--quiet", "--no-track", "-b", branch]).arg("--").arg(path).arg(base);
    output(cmd).map(drop)
}

/// `git worktree remove [--force] <path>`. Without `force` git refuses
/// modified or untracked files; it deletes ignored files either way.
///
/// # Errors
/// As [`output`].
pub fn worktree_remove(repo: &Path, path: &Path, force: bool) -> Result<(), GitError> {
    let mut cmd = command(repo);
    cmd.args(["worktree", "remove"]);
    if force {
        // Twice: also removes a locked worktree (git-worktree(1)).
        cmd.args(["--force", "--force"]);
    }
    cmd.arg("--").arg(path);
    output(cmd).map(drop)
}

/// `git worktree move <from> <to>`: the worktree's folder moves, git's
/// record of it follows.
///
/// # Errors
/// As [`output`].
pub fn worktree_move(repo: &Path, from: &Path, to: &Path) -> Result<(), GitError> {
    let mut cmd = command(repo);
    cmd.args(["worktree", "move", "--"]).arg(from).arg(to);
    output(cmd).map(drop)
}

/// `git worktree prune`: forgets worktrees whose directories are gone.
///
/// # Errors
/// As [`output`].
pub fn worktree_prune(repo: &Path) -> Result<(), GitError> {
    run(repo, &["worktree", "prune"]).map(drop)
}

/// Every worktree of the repository (`git worktree list --porcelain -z`),
/// the main one first.
///
/// `git worktree add` writes a new worktree's admin files one after the
/// other, and a list that reads them in between fails ("failed to read
/// .git/worktrees/NAME/commondir"): such a failure is tried again, up to
/// [`HALF_MADE_TRIES`] times 20 ms apart.
///
/// # Errors
/// As [`output`].
pub fn worktree_list(repo: &Path) -> Result<Vec<WorktreeEntry>, GitError> {
    let mut tries = 0;
    loop {
        let mut cmd = command(repo);
        cmd.args(["--no-optional-locks", "worktree", "list", "--porcelain", "-z"]);
        match output(cmd) {
            Ok(out) => return Ok(parse::worktree_list(&out.stdout)),
            Err(GitError::Failed { stderr, .. }) if tries < HALF_MADE_TRIES && stderr.contains("/worktrees/") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// How often [`worktree_list`] tries again past a worktree half made by a
/// concurrent `git worktree add`.
const HALF_MADE_TRIES: u32 = 25;

/// `git worktree add <path> <branch>`: an existing branch checked out in
/// a new worktree. git refuses a branch checked out elsewhere.
///
/// # Errors
/// As [`output`].
pub fn worktree_add_existing(repo: &Path, path: &Path, branch: &str) -> Result<(), GitError> {
    let mut cmd = command(repo);
    cmd.args(["worktree", "add", "--quiet"]).arg("--").arg(path).arg(branch);
    output(cmd).map(drop)
}

/// The worktree that has `refs/heads/<branch>` checked out, if any.
///
/// # Errors
/// As [`output`].
pub fn worktree_of_branch(repo: &Path, branch: &str) -> Result<Option<PathBuf>, GitError> {
    let full = format!("refs/heads/{branch}");
    Ok(worktree_list(repo)?.into_iter().find(|w| w.branch.as_deref() == Some(full.as_str())).map(|w| w.path))
}
