//! What a session changed: the commit its diff starts from
//! ([`diff_from`], against its base, the remote's default branch or any
//! ref), an index that shows untracked files too ([`IntentIndex`]), and
//! `git diff --numstat` parsed ([`parse_numstat`]).

use std::path::{Path, PathBuf};

use super::{ShipError, worktree};
use crate::git::{self, GitError};
use crate::store::Session;

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

/// A session's changes, as `tandem diff --json` prints them
/// (docs/json.md) and the web dashboard and MCP server answer them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiffReport {
    /// The session's name.
    pub session: String,
    /// The commit the diff starts from ([`diff_from`]; `HEAD` for
    /// uncommitted work only).
    pub from: String,
    /// Per-file counts (renames under their new name).
    pub files: Vec<FileCounts>,
    /// Lines added and removed in all, binary files left out.
    pub insertions: u32,
    pub deletions: u32,
    /// The unified diff (`git diff -M`, no colour), when asked for, cut
    /// at the asked size on a line end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Whether [`DiffReport::patch`] was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// What a session changed against `against` (or, with `uncommitted`,
/// against its `HEAD`), untracked files included, as counts and, with
/// `patch_limit`, as a unified diff of at most that many bytes.
///
/// git runs with `--no-ext-diff --no-textconv`: a repository's (or an
/// agent's) config never runs a program of its choosing here.
///
/// # Errors
/// As [`diff_from`]; [`ShipError::Git`] when `git diff` fails.
pub fn report(
    session: &Session,
    against: &Against,
    uncommitted: bool,
    patch_limit: Option<usize>,
) -> Result<DiffReport, ShipError> {
    let dir = worktree(session)?.to_owned();
    let from = if uncommitted { "HEAD".to_owned() } else { diff_from(session, against)? };
    let index = IntentIndex::new(&dir)?;
    let diff = |args: &[&str]| -> Result<Vec<u8>, ShipError> {
        let mut cmd = git::command(&dir);
        cmd.env("GIT_INDEX_FILE", index.path());
        cmd.args(["diff", "--no-ext-diff", "--no-textconv", "--no-color", "-M"]).args(args).args([from.as_str(), "--"]);
        Ok(git::output(cmd)?.stdout)
    };
    made(session.slug.clone(), from.clone(), diff, patch_limit)
}

/// [`report`] between two trees or commits of a session (its
/// checkpoints: `tandem diff --checkpoint`), `from` named as given.
///
/// # Errors
/// [`ShipError::Git`] when `git diff` fails.
pub fn trees_report(
    session: &Session,
    from: &str,
    to: &str,
    patch_limit: Option<usize>,
) -> Result<DiffReport, ShipError> {
    let dir = worktree(session)?.to_owned();
    let diff = |args: &[&str]| -> Result<Vec<u8>, ShipError> {
        let mut cmd = git::command(&dir);
        cmd.args(["diff", "--no-ext-diff", "--no-textconv", "--no-color", "-M"]).args(args).args([from, to, "--"]);
        Ok(git::output(cmd)?.stdout)
    };
    made(session.slug.clone(), from.to_owned(), diff, patch_limit)
}

/// A [`DiffReport`] from `diff`, which runs `git diff` with the extra
/// arguments it is given: the counts (`--numstat -z`) and, with
/// `patch_limit`, the patch cut to that many bytes.
fn made(
    session: String,
    from: String,
    diff: impl Fn(&[&str]) -> Result<Vec<u8>, ShipError>,
    patch_limit: Option<usize>,
) -> Result<DiffReport, ShipError> {
    let files = parse_numstat(&String::from_utf8_lossy(&diff(&["--numstat", "-z"])?));
    let sum = |f: fn(&FileCounts) -> Option<u32>| files.iter().filter_map(f).sum::<u32>();
    let (insertions, deletions) = (sum(|f| f.insertions), sum(|f| f.deletions));
    let (patch, truncated) = match patch_limit {
        None => (None, false),
        Some(limit) => {
            let bytes = diff(&[])?;
            let (patch, cut) = cut_at_line(&bytes, limit);
            (Some(String::from_utf8_lossy(patch).into_owned()), cut)
        }
    };
    Ok(DiffReport { session, from, files, insertions, deletions, patch, truncated })
}

/// `bytes` up to `limit`, cut after the last whole line; whether cut.
fn cut_at_line(bytes: &[u8], limit: usize) -> (&[u8], bool) {
    if bytes.len() <= limit {
        return (bytes, false);
    }
    let end = bytes[..limit].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    (&bytes[..end], true)
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

    #[test]
    fn a_cut_patch_ends_on_a_whole_line() {
        assert_eq!(cut_at_line(b"ab\ncd\nef\n", 7), (&b"ab\ncd\n"[..], true));
        assert_eq!(cut_at_line(b"ab\n", 7), (&b"ab\n"[..], false));
        assert_eq!(cut_at_line(b"abcdef", 3), (&b""[..], true));
    }
}
