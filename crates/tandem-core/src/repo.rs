//! Finding the repository a command runs in.
//!
//! A repository is keyed by its canonical common git directory (`git
//! rev-parse --git-common-dir`), so a command run inside any of its
//! worktrees, a session's included, sees the same sessions.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use crate::git::{self, GitError};

/// A non-bare git repository.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Canonical common git directory: the repository's identity.
    pub common_dir: PathBuf,
    /// The main worktree's top folder.
    pub root: PathBuf,
    /// The top folder of the worktree the command ran in (may be a
    /// session's worktree or another linked worktree).
    pub worktree: PathBuf,
}

/// Errors from [`Repository::discover`].
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{} is not inside a git repository; cd into one, or run `git init` first", path.display())]
    NotARepository { path: PathBuf },
    #[error("{} is a bare repository; tandem needs a working tree: run it in a clone with one", path.display())]
    Bare { path: PathBuf },
    #[error("{} is inside the .git folder; run tandem in the repository's working tree", path.display())]
    InsideGitDir { path: PathBuf },
    /// tandem keeps paths as text (the store, the protocol).
    #[error(
        "{} is not valid UTF-8, and tandem keeps paths as text; rename the folder to a UTF-8 name (`mv`) and run tandem there",
        path.display()
    )]
    NotUtf8 { path: PathBuf },
    /// A `core.bare` repository used through linked worktrees: tandem
    /// needs a main worktree (finding 8).
    #[error(
        "{} is a bare repository used through linked worktrees, and tandem needs one with a main working tree; clone it (`git clone {} DIR`) and run tandem in DIR",
        path.display(),
        path.display()
    )]
    BareWithWorktrees { path: PathBuf },
    #[error(transparent)]
    Git(#[from] GitError),
}

impl Repository {
    /// The repository containing `dir`.
    ///
    /// Paths come from git as bytes; a newline in one (issue 17) is told
    /// by the line count and asked for alone. The main worktree of a
    /// submodule (whose git dir sits under the superproject's
    /// `.git/modules/`) is its `core.worktree` (finding 8).
    ///
    /// # Errors
    /// [`RepoError::NotARepository`], [`RepoError::Bare`],
    /// [`RepoError::InsideGitDir`], [`RepoError::NotUtf8`],
    /// [`RepoError::BareWithWorktrees`], or a git failure.
    pub fn discover(dir: &Path) -> Result<Repository, RepoError> {
        if dir.to_str().is_none() {
            return Err(RepoError::NotUtf8 { path: dir.to_path_buf() });
        }
        // `--show-toplevel` fails outside a working tree (bare, or inside
        // `.git`): then ask again without it, to say which.
        let flags = ["rev-parse", "--path-format=absolute", "--is-bare-repository", "--is-inside-work-tree"];
        let paths = ["--git-common-dir", "--show-toplevel"];
        let out = match raw(dir, &[&flags[..], &paths].concat()) {
            Ok(out) => out,
            Err(GitError::Failed { .. }) => match raw(dir, &flags) {
                Ok(out) => out,
                Err(GitError::Failed { .. }) => return Err(RepoError::NotARepository { path: dir.to_path_buf() }),
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
        if lines.first() == Some(&b"true".as_slice()) {
            return Err(RepoError::Bare { path: dir.to_path_buf() });
        }
        if lines.get(1) != Some(&b"true".as_slice()) {
            return Err(RepoError::InsideGitDir { path: dir.to_path_buf() });
        }
        // Exactly four lines: neither path holds a newline. Otherwise
        // the lines cannot be told apart: ask for each path alone.
        let (common, worktree) = if let [_, _, common, top] = lines[..] {
            (text_path(common)?, text_path(top)?)
        } else {
            let one = |flag: &str| raw(dir, &["rev-parse", "--path-format=absolute", flag]);
            (text_path(&one("--git-common-dir")?)?, text_path(&one("--show-toplevel")?)?)
        };
        let common_dir = std::fs::canonicalize(&common).unwrap_or(common);
        // The main worktree holds the common dir as its `.git`; a
        // submodule's names its own in `core.worktree`; only an unusual
        // layout (`--separate-git-dir`) needs `git worktree list`.
        let root = match common_dir.parent() {
            Some(parent) if common_dir.file_name() == Some(".git".as_ref()) => parent.to_path_buf(),
            _ => match core_worktree(&common_dir)? {
                Some(root) => root,
                None => match git::worktree_list(&worktree)?.into_iter().next() {
                    Some(main) if main.bare => return Err(RepoError::BareWithWorktrees { path: main.path }),
                    Some(main) => main.path,
                    None => worktree.clone(),
                },
            },
        };
        Ok(Repository { common_dir, root, worktree })
    }

    /// A folder name for this repository's worktrees: the main worktree's
    /// name plus a short hash of the common dir, so two clones named alike
    /// do not share a folder. E.g. `webapp-3f2a9c1d`.
    #[must_use]
    pub fn dir_name(&self) -> String {
        let name = self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "repo".to_owned());
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
            .collect();
        format!("{}-{:08x}", safe.trim_start_matches('.'), fnv1a(self.common_dir.as_os_str().as_encoded_bytes()) as u32)
    }
}

/// `git -C dir ARGS…`'s stdout as bytes, the trailing newline removed.
fn raw(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let mut cmd = git::command(dir);
    cmd.arg("--no-optional-locks").args(args);
    let mut out = git::output(cmd)?.stdout;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    Ok(out)
}

/// A path git printed, which must be UTF-8 ([`RepoError::NotUtf8`]).
fn text_path(bytes: &[u8]) -> Result<PathBuf, RepoError> {
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(bytes));
    if std::str::from_utf8(bytes).is_err() {
        return Err(RepoError::NotUtf8 { path });
    }
    Ok(path)
}

/// `core.worktree` of the git dir `common_dir` (set for a submodule),
/// resolved against it; `None` when unset.
fn core_worktree(common_dir: &Path) -> Result<Option<PathBuf>, GitError> {
    let config = common_dir.join("config");
    let mut cmd = git::command(common_dir);
    cmd.arg("config").arg("--file").arg(&config).args(["--get", "core.worktree"]);
    match git::output(cmd) {
        Ok(out) => {
            let mut bytes = out.stdout;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
            }
            let path = common_dir.join(std::ffi::OsStr::from_bytes(&bytes));
            Ok(Some(std::fs::canonicalize(&path).unwrap_or(path)))
        }
        Err(GitError::Failed { code: Some(1), .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// FNV-1a, 64 bits: a stable hash for folder names (not security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The admin folder (`<common dir>/worktrees/<name>`) a linked worktree's
/// `.git` file points at (`gitdir: PATH`, gitrepository-layout(5)); `None`
/// for a main worktree or an unreadable file.
#[must_use]
pub fn admin_dir(worktree: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    text.strip_prefix("gitdir:").map(|p| PathBuf::from(p.trim()))
}
