//! Where tandem keeps its state, sockets and worktrees.
//!
//! Follows the XDG base directory spec; `TANDEM_HOME=DIR` puts everything
//! under `DIR` (every test sets it):
//!
//! | what | default | under `TANDEM_HOME` |
//! |---|---|---|
//! | database, session logs | `$XDG_STATE_HOME/tandem` | `DIR/state` |
//! | sockets | `$XDG_RUNTIME_DIR/tandem`, else `/tmp/tandem-$UID` | `DIR/run` |
//! | worktrees | `$XDG_DATA_HOME/tandem/worktrees` | `DIR/data/worktrees` |
//! | config | `$XDG_CONFIG_HOME/tandem` | `DIR/config` |

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directories tandem uses; see the module docs for the layout.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Database and per-session logs.
    pub state_dir: PathBuf,
    /// Unix sockets and the supervisor's lock; must be private (0700).
    pub runtime_dir: PathBuf,
    /// Default parent of session worktrees.
    pub data_dir: PathBuf,
    /// `config.toml`.
    pub config_dir: PathBuf,
}

/// Errors from [`Paths`].
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// Neither `TANDEM_HOME` nor `HOME` is set.
    #[error("cannot find a home directory: set HOME or TANDEM_HOME")]
    NoHome,
    /// A directory could not be created or read.
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    /// The socket directory is not safe to use: another owner, group or
    /// world access, or a symlink.
    #[error("{path} is not a private directory of this user ({why}); remove it or set XDG_RUNTIME_DIR")]
    Unsafe { path: PathBuf, why: &'static str },
}

impl Paths {
    /// Reads `TANDEM_HOME`, the `XDG_*` variables and `HOME` from the
    /// process environment.
    ///
    /// # Errors
    /// [`PathsError::NoHome`] when no base directory can be found.
    pub fn from_env() -> Result<Paths, PathsError> {
        Self::from_vars(|k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from))
    }

    /// Like [`Paths::from_env`] with an explicit variable lookup.
    ///
    /// # Errors
    /// [`PathsError::NoHome`] when no base directory can be found.
    pub fn from_vars(var: impl Fn(&str) -> Option<PathBuf>) -> Result<Paths, PathsError> {
        if let Some(home) = var("TANDEM_HOME") {
            let home = absolute(&home);
            return Ok(Paths {
                state_dir: home.join("state"),
                runtime_dir: home.join("run"),
                data_dir: home.join("data"),
                config_dir: home.join("config"),
            });
        }
        let home = var("HOME").ok_or(PathsError::NoHome)?;
        let xdg = |name: &str, fallback: &str| {
            var(name).filter(|p| p.is_absolute()).unwrap_or_else(|| home.join(fallback)).join("tandem")
        };
        let runtime_dir = match var("XDG_RUNTIME_DIR").filter(|p| p.is_absolute()) {
            Some(dir) => dir.join("tandem"),
            None => PathBuf::from(format!("/tmp/tandem-{}", nix::unistd::getuid())),
        };
        Ok(Paths {
            state_dir: xdg("XDG_STATE_HOME", ".local/state"),
            runtime_dir,
            data_dir: xdg("XDG_DATA_HOME", ".local/share"),
            config_dir: xdg("XDG_CONFIG_HOME", ".config"),
        })
    }

    /// The SQLite database file.
    #[must_use]
    pub fn database(&self) -> PathBuf {
        self.state_dir.join("tandem.db")
    }

    /// This state folder's owner tag, `o` and 8 hex digits (e.g.
    /// `o3fa2c1d0`): the last part of every snapshot and sync ref this
    /// state folder makes (`refs/tandem/archive/<slug>/<time>-<tag>`), so
    /// `tandem gc` of another state folder on the same repository never
    /// takes them for its own (issue 17). Kept in `<state>/owner`, made
    /// with a random value on first use; two processes making it at once
    /// agree (the first rename wins).
    ///
    /// # Errors
    /// I/O errors creating the state folder or reading or making the
    /// file, each naming the file; `InvalidData` when it holds no tag.
    pub fn owner_tag(&self) -> io::Result<String> {
        let file = self.state_dir.join("owner");
        let valid = |t: &str| is_owner_tag(t).then(|| t.to_owned());
        if let Some(tag) = fs::read_to_string(&file).ok().as_deref().map(str::trim).and_then(valid) {
            return Ok(tag);
        }
        // Each error names the file: "Is a directory" alone says nothing.
        let named = |e: io::Error| {
            let fix = "check that it is a readable file (delete it and tandem makes a new one)";
            io::Error::new(e.kind(), format!("cannot read or make {}: {e}; {fix}", file.display()))
        };
        create_private_dir(&self.state_dir).map_err(named)?;
        let tag = format!("o{:08x}", rand::random::<u32>());
        let scratch = self.state_dir.join(format!("owner.{}", std::process::id()));
        write_private(&scratch, format!("{tag}\n").as_bytes()).map_err(named)?;
        // `link` fails when the file exists: whoever made it first wins.
        let made = fs::hard_link(&scratch, &file);
        let _ = fs::remove_file(&scratch);
        if made.is_ok() {
            return Ok(tag);
        }
        let theirs = fs::read_to_string(&file).map_err(named)?;
        valid(theirs.trim()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold an owner tag (`o` and 8 hex digits); delete it and tandem makes a new one",
                    file.display()
                ),
            )
        })
    }

    /// A session's own folder: its PTY log and its host's log.
    #[must_use]
    pub fn session_dir(&self, session_id: &str) -> PathBuf {
        self.state_dir.join("sessions").join(session_id)
    }

    /// The supervisor's socket.
    #[must_use]
    pub fn supervisor_socket(&self) -> PathBuf {
        self.runtime_dir.join("supervisor.sock")
    }

    /// The supervisor's lock file (held while it runs) and pid file.
    #[must_use]
    pub fn supervisor_lock(&self) -> PathBuf {
        self.runtime_dir.join("supervisor.lock")
    }

    /// The supervisor's log file.
    #[must_use]
    pub fn supervisor_log(&self) -> PathBuf {
        self.state_dir.join("supervisor.log")
    }

    /// A session host's socket. Kept short: a Unix socket path has at most
    /// 107 bytes.
    #[must_use]
    pub fn host_socket(&self, session_id: &str) -> PathBuf {
        self.runtime_dir.join("h").join(format!("{session_id}.sock"))
    }

    /// A sandboxed session's own folder of sockets: its hook channel
    /// ([`Paths::hook_socket`]) and its `sandbox.allow_net` forwards. The
    /// only part of the runtime folder its sandbox sees.
    #[must_use]
    pub fn channel_dir(&self, session_id: &str) -> PathBuf {
        self.runtime_dir.join("s").join(session_id)
    }

    /// The socket a sandboxed session's agent reports its hook events on:
    /// its host takes only that session's hook events there.
    #[must_use]
    pub fn hook_socket(&self, session_id: &str) -> PathBuf {
        self.channel_dir(session_id).join("hook.sock")
    }

    /// A sandboxed session's private repository (the common dir its
    /// worktree uses inside the sandbox; see `sandbox.rs`).
    #[must_use]
    pub fn sandbox_git(&self, session_id: &str) -> PathBuf {
        self.state_dir.join("sandboxes").join(session_id).join("git")
    }

    /// The default parent folder of the worktrees of one repository.
    #[must_use]
    pub fn worktrees_dir(&self, repo_dir_name: &str) -> PathBuf {
        self.data_dir.join("worktrees").join(repo_dir_name)
    }

    /// Creates the state directory (0700), and makes it 0700 when an
    /// older tandem left it open to group or others.
    ///
    /// # Errors
    /// [`PathsError::Create`] when it cannot be made.
    pub fn ensure_state_dir(&self) -> Result<(), PathsError> {
        create_private(&self.state_dir)?;
        tighten(&self.state_dir, 0o700).map_err(|error| PathsError::Create { path: self.state_dir.clone(), error })
    }

    /// Creates the runtime directory and its `h/` folder, and checks that
    /// both are owned by this user, mode 0700, and not symlinks (the socket
    /// directory rule from DESIGN.md).
    ///
    /// # Errors
    /// [`PathsError::Create`] or [`PathsError::Unsafe`].
    pub fn ensure_runtime_dir(&self) -> Result<(), PathsError> {
        for dir in [self.runtime_dir.clone(), self.runtime_dir.join("h"), self.runtime_dir.join("s")] {
            create_private(&dir)?;
            check_private(&dir)?;
        }
        Ok(())
    }
}

/// Creates `dir` and its missing parents with mode 0700: every folder
/// tandem makes under its state folder (issue 16: other users read
/// nothing of it).
///
/// # Errors
/// I/O errors.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Opens `path` for appending, creating it with mode 0600 (a log under
/// the state folder).
///
/// # Errors
/// I/O errors.
pub fn append_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// Writes `bytes` to `path`, creating it with mode 0600.
///
/// # Errors
/// I/O errors.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path)?.write_all(bytes)
}

/// Takes group and other access away from `path` when it has any (a file
/// or folder an older tandem made): its mode becomes at most `mode`.
///
/// # Errors
/// I/O errors other than a missing file.
pub fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_symlink() && meta.permissions().mode() & 0o077 != 0 => {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.permissions().mode() & mode))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub(crate) fn create_private(dir: &Path) -> Result<(), PathsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| PathsError::Create { path: dir.to_path_buf(), error })
}

fn check_private(dir: &Path) -> Result<(), PathsError> {
    let unsafe_dir = |why| PathsError::Unsafe { path: dir.to_path_buf(), why };
    let meta = fs::symlink_metadata(dir).map_err(|error| PathsError::Create { path: dir.to_path_buf(), error })?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("it is a symlink"));
    }
    if meta.uid() != nix::unistd::getuid().as_raw() {
        return Err(unsafe_dir("another user owns it"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        // We made it 0700 ourselves if it is ours; tighten rather than fail
        // when an older tandem or the user loosened it.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|_| unsafe_dir("group or others can open it"))?;
    }
    Ok(())
}

/// Whether `tag` is an owner tag as [`Paths::owner_tag`] makes them.
#[must_use]
pub fn is_owner_tag(tag: &str) -> bool {
    tag.len() == 9 && tag.starts_with('o') && tag[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The user's runtime folder (`$XDG_RUNTIME_DIR`, else `/run/user/UID`)
/// when there is one: ssh-agent's, gpg-agent's, D-Bus's and systemd's
/// sockets live there.
#[must_use]
pub fn user_runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| Some(PathBuf::from(format!("/run/user/{}", nix::unistd::Uid::effective()))))
        .filter(|p| p.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tandem_home_overrides_everything() {
        let paths = Paths::from_vars(|k| match k {
            "TANDEM_HOME" => Some(PathBuf::from("/th")),
            "XDG_STATE_HOME" => Some(PathBuf::from("/xdg")),
            _ => None,
        })
        .expect("paths");
        assert_eq!(paths.database(), PathBuf::from("/th/state/tandem.db"));
        assert_eq!(paths.supervisor_socket(), PathBuf::from("/th/run/supervisor.sock"));
    }

    #[test]
    fn xdg_dirs_are_used_when_absolute() {
        let paths = Paths::from_vars(|k| match k {
            "HOME" => Some(PathBuf::from("/home/u")),
            "XDG_STATE_HOME" => Some(PathBuf::from("relative")),
            "XDG_RUNTIME_DIR" => Some(PathBuf::from("/run/user/7")),
            _ => None,
        })
        .expect("paths");
        assert_eq!(paths.state_dir, PathBuf::from("/home/u/.local/state/tandem"));
        assert_eq!(paths.runtime_dir, PathBuf::from("/run/user/7/tandem"));
    }

    #[test]
    fn runtime_dir_is_made_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| tmp.path().to_path_buf())).expect("paths");
        paths.ensure_runtime_dir().expect("runtime dir");
        let mode = fs::metadata(&paths.runtime_dir).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
