//! Finding the repository a command runs in.
//!
//! A repository is keyed by its canonical common git directory (`git
//! rev-parse --git-common-dir`), so a command run inside any of its
//! worktrees, a session's included, sees the same sessions.

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
    #[error(transparent)]
    Git(#[from] GitError),
}

impl Repository {
    /// The repository containing `dir`.
    ///
    /// # Errors
    /// [`RepoError::NotARepository`], [`RepoError::Bare`],
    /// [`RepoError::InsideGitDir`], or a git failure.
    pub fn discover(dir: &Path) -> Result<Repository, RepoError> {
        // `--show-toplevel` fails outside a working tree (bare, or inside
        // `.git`): then ask again without it, to say which.
        let flags = [
            "rev-parse",
            "--path-format=absolute",
            "--is-bare-repository",
            "--is-inside-work-tree",
            "--git-common-dir",
        ];
        let out = match git::read(dir, &[&flags[..], &["--show-toplevel"]].concat()) {
            Ok(out) => out,
            Err(GitError::Failed { .. }) => match git::read(dir, &flags) {
                Ok(out) => out,
                Err(GitError::Failed { .. }) => return Err(RepoError::NotARepository { path: dir.to_path_buf() }),
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        let mut lines = out.lines();
        let bare = lines.next() == Some("true");
        let inside = lines.next() == Some("true");
        let common = lines.next().unwrap_or_default();
        if bare {
            return Err(RepoError::Bare { path: dir.to_path_buf() });
        }
        if !inside {
            return Err(RepoError::InsideGitDir { path: dir.to_path_buf() });
        }
        let common_dir = std::fs::canonicalize(common).unwrap_or_else(|_| PathBuf::from(common));
        let worktree = PathBuf::from(lines.next().unwrap_or_default());
        // The main worktree holds the common dir as its `.git`; only an
        // unusual layout (`--separate-git-dir`) needs `git worktree list`.
        let root = match common_dir.parent() {
            Some(parent) if common_dir.file_name() == Some(".git".as_ref()) => parent.to_path_buf(),
            _ => git::worktree_list(&worktree)?
                .into_iter()
                .next()
                .map(|main| main.path)
                .unwrap_or_else(|| worktree.clone()),
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
