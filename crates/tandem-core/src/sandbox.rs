// Whole on purpose (issue 18): one Fence and the two runners (bubblewrap, container) that turn it into an argv, 700 lines of code and its tests; apart, what each runner mounts could no longer be compared side by side.
//! Fencing a session's agent in: `workspace` mode runs it under
//! bubblewrap, `container` mode in a Docker or Podman container.
//!
//! Both come down to a command line that wraps the agent's own (and the
//! repository's setup and teardown hooks, which run in the same fence):
//! a [`Fence`], what one start of one session may reach, turns the
//! agent's argv into the argv to run instead ([`Fence::wrap`]).
//!
//! `workspace` (Linux, `bwrap` from the distribution's `bubblewrap`
//! package; see bwrap(1) for the options used):
//! - the root filesystem read-only, a private `/tmp`, `/proc` and `/dev`
//!   of its own, a PID namespace that dies with the agent;
//! - read-write only: the session's worktree, its private repository
//!   ([`crate::sandbox_git`]: mounted where the repository's common dir
//!   is, with its own copy of the worktree's admin folder, objects shared
//!   read-only through alternates, so nothing outside its own branch can
//!   change and its work comes back as data), the paths
//!   `sandbox.allow_write` names, and the config folder an agent's
//!   environment names (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`,
//!   `GEMINI_CLI_HOME`);
//! - read-only: the worktree's `.git` file (git outside reads it to find
//!   the admin folder), and the private repository's `config`, `hooks`,
//!   `info` and alternates; the repository's own admin folder of the
//!   worktree is not seen at all;
//! - no socket of tandem's but the session's hook channel
//!   ([`HOOK_SOCKET`]): the agent's hooks (`tandem hook`) hand their
//!   events to the session's host there, which records them for that
//!   session and takes nothing else;
//! - hidden behind an empty folder or file: every other worktree of the
//!   repository, the folder of session worktrees, the main checkout,
//!   tandem's state (database, every session's logs) and runtime folder
//!   (supervisor's and hosts' sockets), the user's runtime folder
//!   (`/run/user/UID`: ssh-agent, gpg-agent, D-Bus, systemd), and the
//!   credentials `sandbox.hide` names (`~/.ssh`, …);
//! - with `sandbox.network = "off"` a network namespace of its own (only a
//!   loopback device), where each `sandbox.allow_net` endpoint `IP:PORT`
//!   is forwarded to the same endpoint outside: `tandem sandbox-net`
//!   listens inside and hands each connection over a Unix socket to the
//!   host, which connects it ([`Forward`]).
//!
//! As root, bwrap keeps every capability (bwrap(1), `--cap-drop`): tandem
//! drops them all, so root inside cannot remount what is read-only.
//!
//! `container`: `docker run` (or `podman run`) of `sandbox.image` with a
//! terminal, the worktree and the same git mounts as `workspace`,
//! tandem's binary and the session's hook channel for the agent's
//! hooks (not `$HOME`), the environment passed by name (values never on a command
//! line), the user's uid and gid, `--network none` when the network is
//! off. The container is named `tandem-<session id>` and removed when the
//! agent ends.

use std::path::{Path, PathBuf};

/// Set inside a sandbox to the session's hook channel
/// ([`crate::paths::Paths::hook_socket`]): `tandem hook` hands its events
/// to the session's host there instead of writing the store, which the
/// sandbox cannot reach. The host takes only hook events of that session
/// on it, as untrusted data.
pub const HOOK_SOCKET: &str = "TANDEM_HOOK_SOCKET";

/// How a session's agent is fenced in (plain data stored with the
/// session: [`crate::model::SandboxMode`]).
pub use crate::model::SandboxMode as Mode;

/// Why a session cannot be fenced in as asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "`bwrap` is not installed, and --sandbox / sandbox.mode = \"workspace\" needs it; install bubblewrap (`sudo apt-get install bubblewrap`, `sudo dnf install bubblewrap`), or run without a sandbox"
    )]
    NoBwrap,
    #[error(
        "neither `docker` nor `podman` is installed, and sandbox.mode = \"container\" needs one; install one, or use --sandbox workspace"
    )]
    NoContainerRuntime,
    #[error(
        "no container engine answers here ({tried}), and sandbox.mode = \"container\" needs one; start Docker (`sudo systemctl start docker`) or Podman, or use --sandbox workspace"
    )]
    NoEngine {
        /// Each engine tried and the last line of its error.
        tried: String,
    },
    #[error(
        "the container engine {engine} cannot start sandbox.image {image:?}: {error}; fix the engine or the image, or use --sandbox workspace"
    )]
    EngineBroken {
        engine: String,
        image: String,
        /// The engine's own error (its last line on stderr).
        error: String,
    },
    #[error(
        "sandbox.image is empty, and sandbox.mode = \"container\" needs an image; set it in config.toml or .tandem.toml"
    )]
    NoImage,
    #[error("sandbox.allow_net: {entry:?} is not IP:PORT (e.g. \"127.0.0.1:8080\"); fix it in config.toml")]
    BadEndpoint { entry: String },
    #[error("sandbox.network: {value:?} is not on or off; fix it in config.toml")]
    BadNetwork { value: String },
    #[error("cannot read the worktree's git link {}: {error}", path.display())]
    GitLink { path: PathBuf, error: std::io::Error },
    #[error(
        "{source_name} names {}, which is not an absolute path (nor `~/…`); give the whole path in config.toml",
        entry.display()
    )]
    NotAbsolute { source_name: String, entry: PathBuf },
    #[error(
        "{source_name} names {}, which holds or is part of {}, {what}: the agent could read and write it there; name another folder in config.toml",
        entry.display(),
        holds.display()
    )]
    ShowsTandem {
        /// `sandbox.allow_write`, or the environment variable naming it.
        source_name: String,
        entry: PathBuf,
        holds: PathBuf,
        /// What `holds` is: tandem's own state, its sockets, the repository.
        what: &'static str,
    },
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
}

/// An endpoint reachable from inside a sandbox whose network is off: the
/// agent connects to `addr` inside; the host accepts it on `socket` and
/// connects to `addr` outside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Forward {
    pub addr: std::net::SocketAddr,
    pub socket: PathBuf,
}

/// What one start of one sandboxed session may reach.
#[derive(Debug, Clone)]
pub struct Fence {
    pub mode: Mode,
    /// The session's id: names its container and its forward sockets.
    pub session_id: String,
    pub worktree: PathBuf,
    /// The repository's main worktree: hidden.
    pub repo_root: PathBuf,
    /// The repository's git common dir: the private repository is
    /// mounted there instead, the worktree's admin folder inside it.
    pub common_dir: PathBuf,
    /// The worktree's admin folder (`<common>/worktrees/<name>`), from
    /// the repository's records ([`crate::sandbox_git::admin_of`]): not
    /// seen inside, where the private repository's copy takes its place.
    pub admin: PathBuf,
    /// The session's private repository, the worktree's common dir
    /// inside ([`crate::sandbox_git`]): read-write but its `config`,
    /// `hooks` and `info`.
    pub private_git: PathBuf,
    /// Where the repository's objects are seen, read-only
    /// ([`crate::sandbox_git::objects_mount`]).
    pub objects_mount: PathBuf,
    /// The session's own socket folder (hook channel, forwards):
    /// visible, read-only (a socket connects through a read-only mount).
    pub channel: PathBuf,
    /// Other worktrees of the repository, the folder of session
    /// worktrees, `sandbox.hide`, tandem's state and sockets, the user's
    /// runtime folder (`/run/user/UID`: ssh-agent, D-Bus, systemd), the
    /// main checkout and the common dir: hidden (an empty folder, or an
    /// empty file).
    pub hidden: Vec<PathBuf>,
    /// Read-write beside the worktree and the git parts: existing paths
    /// only.
    pub writable: Vec<PathBuf>,
    /// Visible read-only even where `/tmp` hides them: tandem's binary,
    /// the agent's program, `$HOME`.
    pub readable: Vec<PathBuf>,
    pub network: bool,
    /// Endpoints forwarded in when the network is off.
    pub forwards: Vec<Forward>,
    /// tandem's own binary (`tandem sandbox-net`, hooks).
    pub tandem_exe: PathBuf,
    /// The program that runs the sandbox: `bwrap`, `docker` or `podman`.
    pub runtime: PathBuf,
    /// The image `container` mode runs.
    pub image: String,
    /// Process, memory and private `/tmp` caps ([`crate::limits`]).
    pub limits: crate::limits::Caps,
}

/// What [`check`] found: the runtime's path, whether the network is on,
/// the endpoints allowed while it is off.
pub struct Checked {
    pub runtime: PathBuf,
    pub network: bool,
    pub addrs: Vec<std::net::SocketAddr>,
}

/// The folders a fence binds read-write besides the worktree, each with
/// where it was named: `sandbox.allow_write` (`~/` is `HOME` of `env`),
/// and the agent CLIs' config folders `env` names (`CLAUDE_CONFIG_DIR`,
/// `CODEX_HOME`, `GEMINI_CLI_HOME`).
fn writable_folders(config: &crate::config::Config, env: &[(String, String)]) -> Vec<(String, PathBuf)> {
    let home = env.iter().find(|(k, _)| k == "HOME").map(|(_, v)| PathBuf::from(v));
    let expand = |p: &str| match (p.strip_prefix("~/"), &home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if p == "~" => home.clone().unwrap_or_else(|| PathBuf::from(p)),
        _ => PathBuf::from(p),
    };
    let mut writable: Vec<(String, PathBuf)> =
        config.sandbox.allow_write.iter().map(|p| ("sandbox.allow_write".to_owned(), expand(p))).collect();
    for key in ["CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME"] {
        if let Some((_, v)) = env.iter().find(|(k, _)| k == key) {
            writable.push((key.to_owned(), PathBuf::from(v)));
        }
    }
    writable
}

/// Checks that no folder a fence would bind read-write
/// ([`writable_folders`]) holds tandem's state, its sockets, the main
/// checkout or the git dir: writable folders are bound after the hidden
/// ones (one must show inside a hidden home), so `~/.local` would show
/// `~/.local/state/tandem` again, database, logs and locks.
///
/// # Errors
/// [`SandboxError::ShowsTandem`] for the first such folder.
pub fn check_writable(
    paths: &crate::paths::Paths,
    repo: &crate::repo::Repository,
    config: &crate::config::Config,
    env: &[(String, String)],
) -> Result<(), SandboxError> {
    let mut own = vec![
        (paths.state_dir.clone(), "tandem's state (its database, logs and locks)"),
        (paths.runtime_dir.clone(), "tandem's sockets"),
        (paths.config_dir.clone(), "tandem's config (it sets the sandbox)"),
        (paths.data_dir.clone(), "tandem's data (other sessions' worktrees)"),
        (repo.root.clone(), "the repository's main checkout"),
        (repo.common_dir.clone(), "the repository's git dir"),
    ];
    own.extend(std::env::current_exe().ok().map(|e| (e, "the tandem binary")));
    // Either way round: a folder holding one shows it again, and one
    // inside it (`.git/hooks`) is part of it.
    let overlap = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
    for (source_name, entry) in writable_folders(config, env) {
        if !entry.is_absolute() {
            return Err(SandboxError::NotAbsolute { source_name, entry });
        }
        let real = entry.canonicalize().ok();
        for (holds, what) in &own {
            let held = holds.canonicalize().ok();
            let shows = overlap(holds, &entry) || matches!((&held, &real), (Some(h), Some(r)) if overlap(h, r));
            if shows {
                return Err(SandboxError::ShowsTandem { source_name, entry, holds: holds.clone(), what });
            }
        }
    }
    Ok(())
}

/// Checks that `mode` can run with `config`'s sandbox settings: its
/// runtime is installed, `sandbox.network` and `sandbox.allow_net` parse,
/// `container` mode has an image, the limits parse.
///
/// # Errors
/// The first [`SandboxError`] found.
pub fn check(mode: Mode, config: &crate::config::Config) -> Result<Checked, SandboxError> {
    crate::limits::Caps::from_config(&config.sandbox)?;
    if mode == Mode::Container && config.sandbox.image.trim().is_empty() {
        return Err(SandboxError::NoImage);
    }
    let runtime = runtime(mode)?;
    let network = network_on(&config.sandbox.network)?;
    let addrs = endpoints(&config.sandbox.allow_net)?;
    Ok(Checked { runtime, network, addrs })
}

impl Fence {
    /// What one start of `session` may reach in `mode`: its worktree and
    /// git parts, the paths `config` allows, the config folder `env`
    /// names for the agent, and (read-only) `program`, the agent's own
    /// executable.
    ///
    /// # Errors
    /// [`SandboxError`] for a bad `sandbox.network` or `sandbox.allow_net`,
    /// a missing runtime, or an empty image in `container` mode.
    pub fn new(
        mode: Mode,
        paths: &crate::paths::Paths,
        repo: &crate::repo::Repository,
        config: &crate::config::Config,
        session: &crate::model::Session,
        env: &[(String, String)],
        program: Option<&Path>,
    ) -> Result<Fence, SandboxError> {
        let Checked { runtime, network, addrs } = check(mode, config)?;
        let home = env.iter().find(|(k, _)| k == "HOME").map(|(_, v)| PathBuf::from(v));
        let expand = |p: &str| match (p.strip_prefix("~/"), &home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(p),
        };
        check_writable(paths, repo, config, env)?;
        let writable: Vec<PathBuf> = writable_folders(config, env).into_iter().map(|(_, p)| p).collect();
        let tandem_exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tandem"));
        let mut readable = vec![tandem_exe.clone()];
        readable.extend(home.clone());
        if let Some(program) = program {
            readable.extend(program_paths(program));
        }
        let mut hidden = other_worktrees(&repo.common_dir, &session.path);
        hidden.extend(config.sandbox.hide.iter().map(|p| expand(p)));
        if let Some(folder) = session.path.parent().filter(|f| !repo.root.starts_with(f)) {
            hidden.push(folder.to_path_buf());
        }
        // The common dir is covered by the private repository.
        hidden.extend([paths.state_dir.clone(), paths.runtime_dir.clone(), repo.root.clone()]);
        hidden.extend(user_runtime_dir());
        let admin =
            crate::sandbox_git::admin_of(&repo.common_dir, &session.path).ok_or_else(|| SandboxError::GitLink {
                path: session.path.join(".git"),
                error: std::io::Error::other("not a worktree of this repository"),
            })?;
        let channel = paths.channel_dir(&session.id);
        let forwards = if network {
            Vec::new()
        } else {
            addrs
                .into_iter()
                .enumerate()
                .map(|(i, addr)| Forward { addr, socket: channel.join(format!("net-{i}.sock")) })
                .collect()
        };
        Ok(Fence {
            mode,
            session_id: session.id.clone(),
            worktree: session.path.clone(),
            repo_root: repo.root.clone(),
            common_dir: repo.common_dir.clone(),
            admin,
            private_git: paths.sandbox_git(&session.id),
            objects_mount: crate::sandbox_git::objects_mount(paths, &session.id),
            channel,
            hidden,
            writable,
            readable,
            network,
            forwards,
            tandem_exe,
            runtime,
            image: config.sandbox.image.clone(),
            limits: crate::limits::Caps::from_config(&config.sandbox)?,
        })
    }

    /// The argv that runs `argv` inside this fence; `tty` when it runs
    /// on a terminal (the agent, not a hook).
    ///
    /// # Errors
    /// [`SandboxError::GitLink`] when the worktree's admin dir cannot be
    /// found.
    pub fn wrap(&self, argv: &[String], env: &[(String, String)], tty: bool) -> Result<Vec<String>, SandboxError> {
        match self.mode {
            Mode::Workspace => Ok(self.limits.wrap(&self.tandem_exe, &self.session_id, bwrap(self, argv))),
            Mode::Container => Ok(container(self, argv, env, tty)),
        }
    }

    /// The command that removes what the agent's sandbox left: the
    /// container in `container` mode, the session's cgroup in
    /// `workspace` mode ([`crate::limits`]).
    #[must_use]
    pub fn cleanup(&self) -> Option<Vec<String>> {
        match self.mode {
            Mode::Container => {
                Some(vec![path(&self.runtime), "rm".to_owned(), "--force".to_owned(), container_name(&self.session_id)])
            }
            Mode::Workspace => self.limits.cleanup(&self.tandem_exe, &self.session_id),
        }
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// What must stay visible for `program` to run where the private `/tmp`
/// would hide it: the path itself, its real file, and the package it
/// belongs to (the `node_modules` folder above it, for an npm install).
fn program_paths(program: &Path) -> Vec<PathBuf> {
    let mut out = vec![program.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(program) {
        let package =
            real.ancestors().find(|a| a.file_name().is_some_and(|n| n == "node_modules")).map(Path::to_path_buf);
        out.push(package.unwrap_or(real));
    }
    out
}

/// `sandbox.network` as a switch.
///
/// # Errors
/// [`SandboxError::BadNetwork`].
pub fn network_on(value: &str) -> Result<bool, SandboxError> {
    match value {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(SandboxError::BadNetwork { value: other.to_owned() }),
    }
}

/// Parses `sandbox.allow_net` entries (`IP:PORT`, `localhost:PORT`).
///
/// # Errors
/// [`SandboxError::BadEndpoint`] for the first entry that is not one.
pub fn endpoints(entries: &[String]) -> Result<Vec<std::net::SocketAddr>, SandboxError> {
    entries
        .iter()
        .map(|entry| {
            let spelled = entry.strip_prefix("localhost:").map_or_else(|| entry.clone(), |p| format!("127.0.0.1:{p}"));
            spelled.parse().map_err(|_| SandboxError::BadEndpoint { entry: entry.clone() })
        })
        .collect()
}

/// The program that runs `mode`'s sandboxes, from `PATH`: `bwrap`, or
/// the container engine that answers ([`engine`]).
///
/// # Errors
/// [`SandboxError::NoBwrap`], [`SandboxError::NoContainerRuntime`] or
/// [`SandboxError::NoEngine`].
pub fn runtime(mode: Mode) -> Result<PathBuf, SandboxError> {
    match mode {
        Mode::Workspace => find("bwrap").ok_or(SandboxError::NoBwrap),
        Mode::Container => engine(),
    }
}

/// How long an engine's `info` may take before it counts as not
/// answering.
const ENGINE_INFO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long `run --rm IMAGE` of [`check_engine`] may take (it may pull
/// the image).
const ENGINE_RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The container engine to use: of `docker` and `podman` on `PATH`, the
/// first whose `info` succeeds (a `docker` client with no daemon beside
/// a working `podman` is passed over; issue 16).
///
/// # Errors
/// [`SandboxError::NoContainerRuntime`] when neither is installed,
/// [`SandboxError::NoEngine`] (with each one's error) when none answers.
pub fn engine() -> Result<PathBuf, SandboxError> {
    let installed: Vec<PathBuf> = ["docker", "podman"].into_iter().filter_map(find).collect();
    if installed.is_empty() {
        return Err(SandboxError::NoContainerRuntime);
    }
    let mut tried = Vec::new();
    for program in installed {
        match run_engine(&program, &["info"], ENGINE_INFO_TIMEOUT) {
            Ok(()) => return Ok(program),
            Err(why) => tried.push(format!("{}: {why}", program.display())),
        }
    }
    Err(SandboxError::NoEngine { tried: tried.join("; ") })
}

/// Checks that `engine` can start a container of `image` under `caps`:
/// `run --rm --network none [--pids-limit N] [--memory BYTES]
/// --entrypoint true IMAGE` must succeed. Run before a container session
/// is made, so an engine that cannot run anything (or cannot hold the
/// limits) fails `tandem new` with its own error and nothing made.
///
/// # Errors
/// [`SandboxError::EngineBroken`] with the engine's error.
pub fn check_engine(engine: &Path, image: &str, caps: &crate::limits::Caps) -> Result<(), SandboxError> {
    let mut args: Vec<String> = ["run", "--rm", "--network", "none"].iter().map(|a| (*a).to_owned()).collect();
    args.extend(container_limits(caps));
    args.extend(["--entrypoint".to_owned(), "true".to_owned(), image.to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_engine(engine, &args, ENGINE_RUN_TIMEOUT).map_err(|error| SandboxError::EngineBroken {
        engine: engine.display().to_string(),
        image: image.to_owned(),
        error,
    })
}

/// Runs `program args` (stdin closed) for at most `timeout`: `Err` with
/// the last line it wrote on stderr (or how it ended) unless it exits 0.
fn run_engine(program: &Path, args: &[&str], timeout: std::time::Duration) -> Result<(), String> {
    use std::io::Read;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let mut stderr = child.stderr.take();
    // Read stderr aside: a chatty engine must not block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_owned();
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) if last.is_empty() => Err(format!("`{} {}` exited with {s}", program.display(), args.join(" "))),
        Some(_) => Err(last),
        None => Err(format!("no answer in {} s", timeout.as_secs())),
    }
}

// Generic helpers the sandbox, its private repository and its limits all
// use live in `process` and `paths`, so those do not import each other
// for them (issue 18).
pub use crate::paths::user_runtime_dir;
pub use crate::process::find;

/// The other worktrees of the repository whose common dir is `common_dir`,
/// from its `worktrees/*/gitdir` files (gitrepository-layout(5)); `own`
/// is left out.
#[must_use]
pub fn other_worktrees(common_dir: &Path, own: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(common_dir.join("worktrees")) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("gitdir")).ok())
        .filter_map(|gitdir| Path::new(gitdir.trim()).parent().map(Path::to_path_buf))
        .filter(|p| p != own && p.is_dir())
        .collect()
}

/// What the fence mounts of the repository, in order: `(read-write,
/// source, target)`. The private repository where the common dir is
/// (with its own copy of the worktree's admin folder inside), the
/// repository's objects beside it; then, read-only, the worktree's `.git`
/// file (git outside reads it to find the admin folder) and the private
/// repository's `config`, `hooks`, `info` and `objects/info` (its
/// alternates). The repository's own admin folder is not seen at all.
fn git_mounts(fence: &Fence) -> Vec<(bool, PathBuf, PathBuf)> {
    let mut out = vec![
        (true, fence.private_git.clone(), fence.common_dir.clone()),
        (false, fence.common_dir.join("objects"), fence.objects_mount.clone()),
        (false, fence.worktree.join(".git"), fence.worktree.join(".git")),
    ];
    for name in ["config", "hooks", "info", "objects/info"] {
        if fence.private_git.join(name).exists() {
            out.push((false, fence.private_git.join(name), fence.common_dir.join(name)));
        }
    }
    out
}

fn bwrap(fence: &Fence, argv: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![path(&fence.runtime)];
    let mut arg = |args: &[&str]| out.extend(args.iter().map(|a| (*a).to_owned()));
    arg(&["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    if !fence.network {
        arg(&["--unshare-net"]);
    }
    if nix::unistd::Uid::effective().is_root() {
        arg(&["--cap-drop", "ALL"]);
    }
    arg(&["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]);
    if let Some(size) = fence.limits.tmp_size {
        arg(&["--size", &size.to_string()]);
    }
    arg(&["--tmpfs", "/tmp"]);
    let mut mounts: Vec<String> = Vec::new();
    let mount = |mounts: &mut Vec<String>, how: &str, from: &Path, to: &Path| {
        mounts.extend([how.to_owned(), path(from), path(to)]);
    };
    // Read-only first (the private /tmp may have hidden them), then
    // hidden, then what is seen again inside hidden folders: a later
    // mount wins where they nest.
    for p in fence.readable.iter().filter(|p| p.exists()) {
        mount(&mut mounts, "--ro-bind", p, p);
    }
    // Outermost only: a folder hidden inside a hidden folder is gone
    // already.
    let hidden: Vec<&PathBuf> = fence
        .hidden
        .iter()
        .filter(|p| p.exists() && !fence.hidden.iter().any(|q| q != *p && p.starts_with(q)))
        .collect();
    for p in &hidden {
        if p.is_dir() {
            mounts.extend(["--tmpfs".to_owned(), path(p)]);
        } else {
            mounts.extend(["--ro-bind".to_owned(), "/dev/null".to_owned(), path(p)]);
        }
    }
    mount(&mut mounts, "--bind", &fence.worktree, &fence.worktree);
    for (rw, from, to) in git_mounts(fence) {
        mount(&mut mounts, if rw { "--bind" } else { "--ro-bind" }, &from, &to);
    }
    for p in fence.writable.iter().filter(|p| p.exists()) {
        mount(&mut mounts, "--bind", p, p);
    }
    if fence.channel.is_dir() {
        mount(&mut mounts, "--ro-bind", &fence.channel, &fence.channel);
    }
    // Last, once the mounts inside them are made: nothing written there
    // could be mistaken for a change that lasts.
    for p in hidden.iter().filter(|p| p.is_dir()) {
        mounts.extend(["--remount-ro".to_owned(), path(p)]);
    }
    out.extend(mounts);
    out.extend(["--setenv".to_owned(), HOOK_SOCKET.to_owned(), path(&fence.channel.join("hook.sock"))]);
    out.extend(["--chdir".to_owned(), path(&fence.worktree), "--".to_owned()]);
    if !fence.network && !fence.forwards.is_empty() {
        out.extend([path(&fence.tandem_exe), "sandbox-net".to_owned()]);
        for f in &fence.forwards {
            out.extend(["--forward".to_owned(), format!("{}={}", f.addr, f.socket.display())]);
        }
        out.push("--".to_owned());
    }
    out.extend(argv.iter().cloned());
    out
}

/// The engine flags that hold `caps` in a container.
fn container_limits(caps: &crate::limits::Caps) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = caps.max_processes {
        out.extend(["--pids-limit".to_owned(), n.to_string()]);
    }
    if let Some(n) = caps.max_memory {
        out.extend(["--memory".to_owned(), n.to_string()]);
    }
    out
}

/// The container's name: `tandem-<session id>`.
#[must_use]
pub fn container_name(session_id: &str) -> String {
    format!("tandem-{session_id}")
}

fn container(fence: &Fence, argv: &[String], env: &[(String, String)], tty: bool) -> Vec<String> {
    let mut out = vec![path(&fence.runtime), "run".to_owned(), "--rm".to_owned(), "--interactive".to_owned()];
    if tty {
        out.extend(["--tty".to_owned(), "--name".to_owned(), container_name(&fence.session_id)]);
    }
    out.extend([
        "--user".to_owned(),
        format!("{}:{}", nix::unistd::Uid::effective(), nix::unistd::Gid::effective()),
        "--workdir".to_owned(),
        path(&fence.worktree),
    ]);
    if !fence.network {
        out.extend(["--network".to_owned(), "none".to_owned()]);
    }
    out.extend(container_limits(&fence.limits));
    let mut volume = |from: &Path, to: &Path, ro: bool| {
        out.extend(["--volume".to_owned(), format!("{}:{}{}", path(from), path(to), if ro { ":ro" } else { "" })]);
    };
    volume(&fence.worktree, &fence.worktree, false);
    for (rw, from, to) in git_mounts(fence) {
        volume(&from, &to, !rw);
    }
    // tandem's binary for the agent's hooks; not $HOME, whose
    // credentials a container has no way to hide.
    volume(&fence.tandem_exe, &fence.tandem_exe, true);
    for p in fence.writable.iter().filter(|p| p.exists()) {
        volume(p, p, false);
    }
    if fence.channel.is_dir() {
        volume(&fence.channel, &fence.channel, true);
    }
    out.extend(["--env".to_owned(), format!("{HOOK_SOCKET}={}", path(&fence.channel.join("hook.sock")))]);
    // By name only: the runtime takes each value from its own
    // environment, which is the agent's.
    for (key, _) in env {
        out.extend(["--env".to_owned(), key.clone()]);
    }
    out.push(fence.image.clone());
    out.extend(argv.iter().cloned());
    out
}

/// Inside a sandbox whose network is off: listens on each forward's
/// address and hands every connection to its socket (the host's end,
/// [`serve_forwards`]), runs `argv` as a child on the same terminal, and
/// returns its exit code (128 + signal when a signal ended it).
///
/// # Errors
/// A listener cannot bind, or `argv` cannot start.
pub fn net_main(forwards: &[Forward], argv: &[String]) -> std::io::Result<i32> {
    use std::os::unix::process::ExitStatusExt;
    for forward in forwards {
        let listener = std::net::TcpListener::bind(forward.addr)?;
        let socket = forward.socket.clone();
        let gate = crate::socket::Gate::new(crate::socket::MAX_CONNECTIONS);
        std::thread::Builder::new().name("net-in".into()).spawn(move || {
            for conn in listener.incoming().filter_map(Result::ok) {
                // Past the cap, the connection is closed.
                let Some(pass) = gate.admit() else { continue };
                if let Ok(out) = std::os::unix::net::UnixStream::connect(&socket) {
                    splice(conn, out, pass);
                }
            }
        })?;
    }
    let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::other("no command to run"))?;
    let status = std::process::Command::new(program).args(args).status()?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Outside a sandbox: binds each forward's socket, for
/// [`serve_forwards`] to serve. Bound before the agent starts, so its
/// first connection waits in the socket's backlog rather than failing;
/// served once the host has done what it does single-threaded
/// (`host::record_running`).
///
/// # Errors
/// A socket cannot be bound.
pub fn bind_forwards(forwards: &[Forward]) -> std::io::Result<Vec<BoundForward>> {
    forwards
        .iter()
        .map(|forward| {
            if let Some(dir) = forward.socket.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let _ = std::fs::remove_file(&forward.socket);
            let listener = std::os::unix::net::UnixListener::bind(&forward.socket)?;
            Ok(BoundForward { listener, addr: forward.addr })
        })
        .collect()
}

/// A forward's socket, bound ([`bind_forwards`]), and the address it
/// connects to.
#[derive(Debug)]
pub struct BoundForward {
    listener: std::os::unix::net::UnixListener,
    addr: std::net::SocketAddr,
}

/// Accepts on each bound forward's socket and connects each connection
/// to the forward's address, at most [`crate::socket::MAX_CONNECTIONS`]
/// at once per forward (more are closed; issue 16: 3,000 connections
/// made 2,241 threads). The threads live as long as the process.
///
/// # Errors
/// A thread cannot be started.
pub fn serve_forwards(forwards: Vec<BoundForward>) -> std::io::Result<()> {
    for BoundForward { listener, addr } in forwards {
        let gate = crate::socket::Gate::new(crate::socket::MAX_CONNECTIONS);
        std::thread::Builder::new().name("net-out".into()).spawn(move || {
            for conn in listener.incoming().filter_map(Result::ok) {
                let Some(pass) = gate.admit() else {
                    // Debug, not warn: a flood must not fill the log.
                    tracing::debug!(%addr, "too many forwarded connections; one refused");
                    continue;
                };
                match std::net::TcpStream::connect(addr) {
                    Ok(out) => splice(out, conn, pass),
                    Err(e) => tracing::debug!(%addr, error = %e, "cannot reach a forwarded endpoint"),
                }
            }
        })?;
    }
    Ok(())
}

/// Copies bytes both ways between a TCP and a Unix stream until either
/// side closes, each way in a thread of its own (8 KiB of buffer each);
/// `pass`, the connection's slot, is given back when both are done.
fn splice(tcp: std::net::TcpStream, unix: std::os::unix::net::UnixStream, pass: crate::socket::Pass) {
    let (Ok(mut tcp_r), Ok(mut unix_r)) = (tcp.try_clone(), unix.try_clone()) else { return };
    let (mut tcp_w, mut unix_w) = (tcp, unix);
    let pass = std::sync::Arc::new(pass);
    let held = std::sync::Arc::clone(&pass);
    let _ = std::thread::Builder::new().name("splice".into()).spawn(move || {
        let _ = std::io::copy(&mut tcp_r, &mut unix_w);
        let _ = unix_w.shutdown(std::net::Shutdown::Write);
        drop(held);
    });
    let _ = std::thread::Builder::new().name("splice".into()).spawn(move || {
        let _ = std::io::copy(&mut unix_r, &mut tcp_w);
        let _ = tcp_w.shutdown(std::net::Shutdown::Write);
        drop(pass);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_endpoints_parse_and_refuse_clearly() {
        assert_eq!(Mode::parse_setting("none"), Ok(None));
        assert_eq!(Mode::parse_setting("workspace"), Ok(Some(Mode::Workspace)));
        assert_eq!(Mode::parse_setting("container"), Ok(Some(Mode::Container)));
        assert!(Mode::parse_setting("jail").unwrap_err().contains("use none, workspace or container"));
        let addrs = endpoints(&["127.0.0.1:8080".into(), "localhost:9".into(), "[::1]:443".into()]).unwrap();
        assert_eq!(
            addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["127.0.0.1:8080", "127.0.0.1:9", "[::1]:443"]
        );
        assert!(matches!(endpoints(&["example.com:443".into()]), Err(SandboxError::BadEndpoint { .. })));
        assert!(network_on("on").unwrap() && !network_on("off").unwrap());
        assert!(network_on("maybe").is_err());
    }

    fn fence(mode: Mode, runtime: &str) -> Fence {
        Fence {
            mode,
            session_id: "abc".into(),
            worktree: "/w/wt/job".into(),
            repo_root: "/w/repo".into(),
            common_dir: "/nonexistent/repo/.git".into(),
            admin: "/nonexistent/repo/.git/worktrees/job".into(),
            private_git: "/s/sandboxes/abc/git".into(),
            objects_mount: "/s/sandboxes/abc/objects".into(),
            channel: "/run/s/abc".into(),
            hidden: Vec::new(),
            writable: Vec::new(),
            readable: Vec::new(),
            network: false,
            forwards: vec![Forward { addr: "127.0.0.1:9".parse().unwrap(), socket: "/run/net/abc-0.sock".into() }],
            tandem_exe: "/bin/tandem".into(),
            runtime: runtime.into(),
            image: "img:1".into(),
            limits: crate::limits::Caps::default(),
        }
    }

    #[test]
    fn a_container_gets_the_worktree_the_environment_by_name_and_no_network() {
        let env = [("TOKEN".to_owned(), "s3cret".to_owned())];
        let argv = fence(Mode::Container, "/usr/bin/podman").wrap(&["claude".into()], &env, true).unwrap();
        let line = argv.join(" ");
        assert!(line.starts_with("/usr/bin/podman run --rm --interactive --tty --name tandem-abc --user "), "{line}");
        assert!(line.contains("--network none") && line.contains("--volume /w/wt/job:/w/wt/job "), "{line}");
        assert!(
            line.contains("--env TOKEN img:1 claude") && !line.contains("s3cret"),
            "values never on the command line: {line}"
        );
        let hook = fence(Mode::Container, "docker").wrap(&["sh".into()], &env, false).unwrap();
        assert!(!hook.contains(&"--tty".to_owned()), "a hook has no terminal");
        assert_eq!(fence(Mode::Container, "docker").cleanup().unwrap().join(" "), "docker rm --force tandem-abc");
        assert_eq!(fence(Mode::Workspace, "bwrap").cleanup(), None);
    }

    #[test]
    fn limits_wrap_a_workspace_in_sandbox_limit_and_reach_a_container_as_engine_flags() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(".git"), "gitdir: /nonexistent/repo/.git/worktrees/job\n").unwrap();
        let caps = crate::limits::Caps { max_processes: Some(64), max_memory: Some(1 << 30), tmp_size: Some(1 << 20) };
        let mut workspace = fence(Mode::Workspace, "/usr/bin/bwrap");
        workspace.worktree = tmp.path().to_path_buf();
        workspace.limits = caps;
        let line = workspace.wrap(&["sh".into()], &[], true).unwrap().join(" ");
        assert!(
            line.starts_with("/bin/tandem sandbox-limit --name tandem-abc --max-processes 64 --max-memory 1073741824 -- /usr/bin/bwrap "),
            "{line}"
        );
        assert_eq!(workspace.cleanup().unwrap().join(" "), "/bin/tandem sandbox-limit --remove tandem-abc");
        let mut container = fence(Mode::Container, "docker");
        container.limits = caps;
        let line = container.wrap(&["sh".into()], &[], true).unwrap().join(" ");
        assert!(line.contains(" --pids-limit 64 --memory 1073741824 "), "{line}");
    }

    #[test]
    fn a_workspace_forwards_its_endpoints_through_tandem_and_runs_the_agent_last() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(".git"), "gitdir: /nonexistent/repo/.git/worktrees/job\n").unwrap();
        let mut fence = fence(Mode::Workspace, "/usr/bin/bwrap");
        fence.worktree = tmp.path().to_path_buf();
        let argv = fence.wrap(&["claude".into()], &[], true).unwrap();
        let line = argv.join(" ");
        assert!(
            line.contains("--unshare-net") && line.contains("--ro-bind / / --dev /dev --proc /proc --tmpfs /tmp"),
            "{line}"
        );
        let tail = format!(
            "--chdir {} -- /bin/tandem sandbox-net --forward 127.0.0.1:9=/run/net/abc-0.sock -- claude",
            tmp.path().display()
        );
        assert!(line.ends_with(&tail), "{line}");
    }
}
