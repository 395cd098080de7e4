//! Pure parsers for git's machine-readable output, tested on captured
//! bytes. Paths come NUL-separated, so a newline in a path cannot break
//! them.

use std::path::PathBuf;

/// Changed and untracked paths in a worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Tracked paths with staged or unstaged changes, including conflicts.
    pub changed: usize,
    /// Untracked, not ignored paths (a new directory counts once).
    pub untracked: usize,
    /// The changed paths (both sides of a rename), when asked for.
    pub changed_paths: Vec<String>,
    /// The paths whose worktree file differs from the index: changed
    /// ones whose second status letter (`Y`) is not `.`, unmerged ones,
    /// and untracked ones (a new folder as `folder/`, once). `git add
    /// --all` of exactly these makes the index match the worktree.
    pub unstaged_paths: Vec<String>,
    /// For each changed path that has one: the path and the object id of
    /// its HEAD version (`hH`; all zeros when new in the index).
    pub head_blobs: Vec<(String, String)>,
    /// `# branch.head`: the checked-out branch, `None` when detached or
    /// not asked for (`--branch`).
    pub head: Option<String>,
}

impl StatusCounts {
    /// Whether anything is uncommitted.
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.changed + self.untracked > 0
    }
}

/// Parses `git status --porcelain=v2 -z`. Entries: `1 …` (changed), `2 …`
/// (renamed or copied; its original path follows as its own field),
/// `u …` (unmerged), `? path` (untracked), `! path` (ignored), `# …`
/// (headers). See git-status(1), "Porcelain Format Version 2".
#[must_use]
pub fn status_counts(out: &[u8]) -> StatusCounts {
    let mut counts = StatusCounts::default();
    let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
    // The path is the last space-separated part of a record: after 8
    // fields for `1`, 9 for `2`, 10 for `u`.
    let path_of = |field: &[u8], spaces: usize| {
        field.splitn(spaces + 1, |&b| b == b' ').nth(spaces).map(|p| String::from_utf8_lossy(p).into_owned())
    };
    while let Some(field) = fields.next() {
        match field.first() {
            Some(b'1') => {
                counts.changed += 1;
                let path = path_of(field, 8);
                if field.get(3) != Some(&b'.') {
                    counts.unstaged_paths.extend(path.clone());
                }
                if let (Some(p), Some(oid)) = (&path, field.split(|&b| b == b' ').nth(6)) {
                    counts.head_blobs.push((p.clone(), String::from_utf8_lossy(oid).into_owned()));
                }
                counts.changed_paths.extend(path);
            }
            Some(b'u') => {
                counts.changed += 1;
                counts.changed_paths.extend(path_of(field, 10));
                counts.unstaged_paths.extend(path_of(field, 10));
            }
            Some(b'2') => {
                counts.changed += 1;
                let path = path_of(field, 9);
                if field.get(3) != Some(&b'.') {
                    counts.unstaged_paths.extend(path.clone());
                }
                let orig = fields.next().map(|p| String::from_utf8_lossy(p).into_owned());
                if let (Some(p), Some(oid)) = (&path, field.split(|&b| b == b' ').nth(6)) {
                    counts.head_blobs.push((p.clone(), String::from_utf8_lossy(oid).into_owned()));
                }
                counts.changed_paths.extend(path);
                counts.changed_paths.extend(orig);
            }
            Some(b'?') => {
                counts.untracked += 1;
                counts.unstaged_paths.extend(path_of(field, 1));
            }
            Some(b'#') => {
                if let Some(head) = field.strip_prefix(b"# branch.head ") {
                    counts.head = Some(String::from_utf8_lossy(head).into_owned()).filter(|h| h != "(detached)");
                }
            }
            _ => {}
        }
    }
    counts
}

/// One record of `git worktree list --porcelain -z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeEntry {
    pub path: PathBuf,
    /// `None` when bare, unborn or detached.
    pub head: Option<String>,
    /// Full ref name, e.g. `refs/heads/fix-login`; `None` when detached.
    pub branch: Option<String>,
    pub bare: bool,
    pub detached: bool,
    /// `Some(reason)` when locked (reason may be empty).
    pub locked: Option<String>,
    /// `Some(reason)` when git would prune it.
    pub prunable: Option<String>,
}

/// Parses `git worktree list --porcelain -z`: attributes are
/// NUL-terminated, records end with an extra NUL (git-worktree(1)).
#[must_use]
pub fn worktree_list(out: &[u8]) -> Vec<WorktreeEntry> {
    let mut entries = Vec::new();
    let mut current: Option<WorktreeEntry> = None;
    for field in out.split(|&b| b == 0) {
        let text = String::from_utf8_lossy(field);
        if field.is_empty() {
            entries.extend(current.take());
            continue;
        }
        let (key, value) = text.split_once(' ').unwrap_or((&text, ""));
        if key == "worktree" {
            entries.extend(current.take());
            current = Some(WorktreeEntry {
                path: PathBuf::from(value),
                head: None,
                branch: None,
                bare: false,
                detached: false,
                locked: None,
                prunable: None,
            });
            continue;
        }
        let Some(entry) = current.as_mut() else { continue };
        match key {
            "HEAD" => entry.head = Some(value.to_owned()),
            "branch" => entry.branch = Some(value.to_owned()),
            "bare" => entry.bare = true,
            "detached" => entry.detached = true,
            "locked" => entry.locked = Some(value.to_owned()),
            "prunable" => entry.prunable = Some(value.to_owned()),
            _ => {}
        }
    }
    entries.extend(current);
    entries
}

/// One path of `git ls-files -z --directory`, relative to the directory
/// git ran in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsFilesEntry {
    pub path: PathBuf,
    /// Whether git printed it as a directory (a trailing `/`): one entry
    /// standing for everything under it.
    pub dir: bool,
}

/// Parses `git ls-files -z --directory`: NUL-terminated paths, a directory
/// with a trailing `/` (git-ls-files(1)). Bytes are taken as they are, so
/// a path need not be UTF-8.
#[must_use]
pub fn ls_files_entries(out: &[u8]) -> Vec<LsFilesEntry> {
    use std::os::unix::ffi::OsStrExt;
    out.split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .map(|field| {
            let dir = field.ends_with(b"/");
            let path = field.strip_suffix(b"/").unwrap_or(field);
            LsFilesEntry { path: PathBuf::from(std::ffi::OsStr::from_bytes(path)), dir }
        })
        .collect()
}

/// Parses `git rev-list --left-right --count A...B`: `"<left>\t<right>"`,
/// returned as `(right, left)`, i.e. `(ahead, behind)` for `base...branch`.
#[must_use]
pub fn left_right_counts(out: &str) -> Option<(u32, u32)> {
    let mut parts = out.split_whitespace();
    let left = parts.next()?.parse().ok()?;
    let right = parts.next()?.parse().ok()?;
    Some((right, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_renames_and_untracked() {
        let out = b"# branch.oid abc\0# branch.head main\0\
1 .M N... 100644 100644 100644 a a src/a.rs\0\
2 R. N... 100644 100644 100644 a a R100 new name\0old\nname\0\
u UU N... 1 2 3 4 a b c conflict.rs\0\
? new file.txt\0! target/\0";
        assert_eq!(
            status_counts(out),
            StatusCounts {
                changed: 3,
                untracked: 1,
                changed_paths: vec!["src/a.rs".into(), "new name".into(), "old\nname".into(), "conflict.rs".into()],
                unstaged_paths: vec!["src/a.rs".into(), "conflict.rs".into(), "new file.txt".into()],
                head_blobs: vec![("src/a.rs".into(), "a".into()), ("new name".into(), "a".into())],
                head: Some("main".into()),
            }
        );
        assert_eq!(status_counts(b"# branch.head (detached)\0").head, None);
        assert!(!status_counts(b"# branch.oid abc\0").is_dirty());
    }

    #[test]
    fn worktree_list_parses_records_with_newlines_in_paths() {
        let out = b"worktree /repo\0HEAD 1111\0branch refs/heads/main\0\0\
worktree /wt/odd\nname\0HEAD 2222\0detached\0locked initializing\0\0\
worktree /wt/gone\0HEAD 3333\0branch refs/heads/gone\0prunable gitdir file points to non-existent location\0\0";
        let list = worktree_list(out);
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].branch.as_deref(), Some("refs/heads/main"));
        assert_eq!(list[1].path, PathBuf::from("/wt/odd\nname"));
        assert!(list[1].detached);
        assert_eq!(list[1].locked.as_deref(), Some("initializing"));
        assert!(list[2].prunable.is_some());
    }

    #[test]
    fn ls_files_entries_marks_directories() {
        let out = b".env\0target/\0odd\nname\0";
        let entries = ls_files_entries(out);
        assert_eq!(
            entries,
            [
                LsFilesEntry { path: PathBuf::from(".env"), dir: false },
                LsFilesEntry { path: PathBuf::from("target"), dir: true },
                LsFilesEntry { path: PathBuf::from("odd\nname"), dir: false },
            ]
        );
        assert!(ls_files_entries(b"").is_empty());
    }

    #[test]
    fn left_right_is_ahead_then_behind() {
        assert_eq!(left_right_counts("3\t5"), Some((5, 3)));
        assert_eq!(left_right_counts("garbage"), None);
    }
}
