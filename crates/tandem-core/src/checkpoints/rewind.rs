//! `tandem rewind`: puts a session's worktree (or some paths of it) back
//! as it was at one of its checkpoints, after checkpointing it as it is,
//! so the rewind itself can be undone.

use std::path::{Component, Path, PathBuf};

use super::{CheckpointError, Take, take};
use crate::git;
use crate::model::{Cause, Checkpoint};
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::{Session, Store};

/// What to rewind to, and how far.
#[derive(Debug, Clone, Default)]
pub struct Rewind {
    /// The checkpoint to go back to; `None` with `undo`.
    pub to: Option<u32>,
    /// Go back to the state before the session's last rewind (the
    /// checkpoint that rewind made first).
    pub undo: bool,
    /// Only these paths (relative to the worktree's top; a folder means
    /// everything under it); empty for the whole worktree.
    pub files: Vec<String>,
    /// Also move `HEAD` (the session's branch) and the index back to the
    /// checkpoint's.
    pub hard: bool,
    /// The user's `checkpoints.keep`.
    pub keep: u32,
    /// Also resume the agent's conversation from that turn (the client
    /// restarts the agent: [`crate::client::Tandem::rewind`]; only where
    /// [`crate::agent::resumes_at_message`]).
    pub conversation: bool,
}

/// What a rewind did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RewindDone {
    /// The checkpoint of the worktree as it was just before
    /// (`rewind --undo` goes back to it).
    pub before: Checkpoint,
    /// The checkpoint the worktree now matches.
    pub to: Checkpoint,
    /// Files written back, and files deleted (they were not there then).
    pub written: usize,
    pub deleted: usize,
    /// Where `HEAD` was and now is, when `--hard` moved it.
    pub head_moved: Option<(String, String)>,
    /// Whether the index was put back as it was at the checkpoint.
    pub index_restored: bool,
    /// With [`Rewind::conversation`]: the agent's message its conversation
    /// was resumed up to (set by the client once the agent restarted).
    pub resumed_at: Option<String>,
}

/// Rewinds `session`'s worktree (see [`Rewind`]). The caller has made
/// sure the agent is not in the middle of a turn.
///
/// # Errors
/// [`CheckpointError::NoSuch`] for an unknown checkpoint,
/// [`CheckpointError::NothingToUndo`], [`CheckpointError::BadPath`] for a
/// path outside the worktree, [`CheckpointError::HardInSandbox`],
/// [`CheckpointError::NoWorktree`]; git and store failures. Nothing is
/// changed when any of these is found, before the worktree is touched.
pub fn rewind(
    paths: &Paths,
    repo: &Repository,
    store: &Store,
    session: &Session,
    how: &Rewind,
) -> Result<RewindDone, CheckpointError> {
    let (target, pathspecs) = check(store, session, how)?;
    let slug = || session.slug.clone();
    let before = take(
        paths,
        repo,
        store,
        session,
        Take { cause: Cause::Rewind, rewound_to: Some(target.n), force: true, keep: how.keep.max(2) },
    )?
    .ok_or_else(|| CheckpointError::NoWorktree { slug: slug() })?;
    let dir = &session.path;

    // What differs between now and then, within the paths asked for.
    let mut args = vec!["diff-tree", "-r", "-z", "--no-renames", "--name-status", &before.tree, &target.tree, "--"];
    args.extend(pathspecs.iter().map(String::as_str));
    let listed = git::read(dir, &args)?;
    let mut fields = listed.split('\0').filter(|f| !f.is_empty());
    let (mut write, mut delete) = (Vec::new(), Vec::new());
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        if status == "D" { delete.push(path.to_owned()) } else { write.push(path.to_owned()) }
    }
    for path in &delete {
        remove_with_empty_parents(dir, Path::new(path));
    }
    if !write.is_empty() {
        checkout_from_tree(dir, &paths.state_dir, &target.tree, &write)?;
    }

    // HEAD and the index.
    let head_now = git::resolve_commit(dir, "HEAD")?;
    let mut head_moved = None;
    if how.hard
        && let Some(head) = &target.head
        && head_now.as_ref() != Some(head)
    {
        let old = head_now.clone().unwrap_or_default();
        let reason = format!("tandem: rewind to checkpoint {}", target.n);
        // Compare-and-swap: the branch (or a detached HEAD) moves only
        // from where it was read.
        git::run(dir, &["update-ref", "-m", &reason, "HEAD", head, &old])?;
        head_moved = Some((old, head.clone()));
    }
    let head_is_then = git::resolve_commit(dir, "HEAD")? == target.head;
    let mut index_restored = false;
    if how.files.is_empty() && head_is_then {
        let index = match &target.index_tree {
            Some(tree) => Some(tree.clone()),
            None => target.head.as_ref().map(|h| format!("{h}^{{tree}}")),
        };
        if let Some(tree) = index {
            git::run(dir, &["read-tree", &tree])?;
            // Stat data, so `git status` does not hash every file again.
            let _ = git::run(dir, &["update-index", "-q", "--refresh"]);
            index_restored = true;
        }
    }
    Ok(RewindDone {
        before,
        to: target,
        written: write.len(),
        deleted: delete.len(),
        head_moved,
        index_restored,
        resumed_at: None,
    })
}

/// Checks a rewind before anything changes: the checkpoint it goes to
/// (returned, with the pathspecs of `how.files`).
///
/// # Errors
/// As [`rewind`], but for git and store failures while rewinding.
pub fn check(store: &Store, session: &Session, how: &Rewind) -> Result<(Checkpoint, Vec<String>), CheckpointError> {
    let slug = || session.slug.clone();
    if !session.path.is_dir() {
        return Err(CheckpointError::NoWorktree { slug: slug() });
    }
    let target = if how.undo {
        let all = store.checkpoints(&session.id)?;
        all.into_iter()
            .find(|c| c.cause == Cause::Rewind)
            .ok_or_else(|| CheckpointError::NothingToUndo { slug: slug() })?
    } else {
        let n = how.to.unwrap_or(0);
        store.checkpoint(&session.id, n)?.ok_or_else(|| CheckpointError::NoSuch {
            slug: slug(),
            n,
            newest: store.checkpoints(&session.id).ok().and_then(|all| all.first().map(|c| c.n)),
        })?
    };
    let pathspecs = how
        .files
        .iter()
        .map(|p| pathspec(&session.path, p).ok_or_else(|| CheckpointError::BadPath { slug: slug(), path: p.clone() }))
        .collect::<Result<Vec<_>, _>>()?;
    if how.hard && session.sandbox.is_some() {
        return Err(CheckpointError::HardInSandbox { slug: slug() });
    }
    if how.hard
        && let Some(head) = &target.head
        && git::resolve_commit(&session.path, head)?.is_none()
    {
        return Err(CheckpointError::HeadGone { n: target.n, head: head.clone() });
    }
    Ok((target, pathspecs))
}

/// A literal git pathspec for `path` (relative to `top`, or absolute
/// inside it); `None` when it leaves the worktree.
fn pathspec(top: &Path, path: &str) -> Option<String> {
    let p = Path::new(path);
    let rel: PathBuf = if p.is_absolute() {
        let top = top.canonicalize().unwrap_or_else(|_| top.to_owned());
        let parent = p.parent().and_then(|d| d.canonicalize().ok());
        let full = match (parent, p.file_name()) {
            (Some(d), Some(name)) => d.join(name),
            _ => p.to_owned(),
        };
        full.strip_prefix(&top).ok()?.to_owned()
    } else {
        p.to_owned()
    };
    let mut clean = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let text = clean.to_str()?;
    if text.is_empty() || text == ".git" || text.starts_with(".git/") {
        return None;
    }
    Some(format!(":(literal){text}"))
}

/// Deletes `rel` under `top` (a file or symlink; never a folder's
/// contents), then each parent folder left empty, up to `top`.
fn remove_with_empty_parents(top: &Path, rel: &Path) {
    let full = top.join(rel);
    match std::fs::symlink_metadata(&full) {
        Ok(meta) if !meta.is_dir() => {
            let _ = std::fs::remove_file(&full);
        }
        _ => return,
    }
    let mut dir = full.parent();
    while let Some(d) = dir {
        if d == top || !d.starts_with(top) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Writes `files` of `tree` into the worktree `dir` (overwriting what is
/// there) through a temporary index in `scratch`: `git read-tree` into
/// it, then `git checkout-index -f --stdin`. The worktree's own index is
/// not touched.
fn checkout_from_tree(dir: &Path, scratch: &Path, tree: &str, files: &[String]) -> Result<(), git::GitError> {
    let index = scratch.join(format!("snapshot-index-{}-rewind", std::process::id()));
    let _ = std::fs::remove_file(&index);
    let result = (|| {
        let mut cmd = git::command(dir);
        cmd.env("GIT_INDEX_FILE", &index).args(["read-tree", tree]);
        git::output(cmd)?;
        // A file where a folder is to go (or the other way round) would
        // stop checkout-index: clear what is in the way first.
        for f in files {
            clear_the_way(dir, Path::new(f));
        }
        let mut cmd = git::command(dir);
        cmd.env("GIT_INDEX_FILE", &index).args(["checkout-index", "-f", "-z", "--stdin"]);
        let input: Vec<u8> = files.iter().flat_map(|f| f.bytes().chain([0])).collect();
        git::output_with_stdin(cmd, &input).map(drop)
    })();
    let _ = std::fs::remove_file(&index);
    result
}

/// Removes whatever blocks writing the file `rel`: a file where one of
/// its parent folders goes, an empty folder where it goes. A folder with
/// files in it is left (those files were checkpointed just before).
fn clear_the_way(top: &Path, rel: &Path) {
    let mut at = top.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else { return };
        let last = i + 1 == parts.len();
        if !last && !meta.is_dir() {
            let _ = std::fs::remove_file(&at);
            return;
        }
        if last && meta.is_dir() {
            let _ = std::fs::remove_dir(&at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathspecs_stay_inside_the_worktree() {
        let top = Path::new("/nonexistent/wt");
        assert_eq!(pathspec(top, "src/a.rs").as_deref(), Some(":(literal)src/a.rs"));
        assert_eq!(pathspec(top, "./src/").as_deref(), Some(":(literal)src"));
        assert_eq!(pathspec(top, "/nonexistent/wt/x").as_deref(), Some(":(literal)x"));
        assert_eq!(pathspec(top, "*.rs").as_deref(), Some(":(literal)*.rs"), "no glob: literal");
        for bad in ["../x", "src/../../x", "/etc/passwd", ".git", ".git/config", ".", ""] {
            assert_eq!(pathspec(top, bad), None, "{bad}");
        }
    }
}
