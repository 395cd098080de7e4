//! `tandem proxy`: the remote end of an SSH link (issue 21). Another
//! machine's tandem runs `ssh HOST tandem proxy` and speaks
//! [`RemoteRequest`]s over its stdio; this process answers each with this
//! machine's own supervisor, store and hosts, through the same typed
//! client every local front end uses. One request per process (as one per
//! supervisor connection); the connection itself is the user's OpenSSH,
//! multiplexed, so no port is opened here.
//!
//! The proxy runs as the user who logged in, with that user's tandem
//! state: a request can do what `tandem` run there by that user can, no
//! more.

use std::io::{BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use tandem_core::git;
use tandem_core::protocol::{
    self, KIND_DATA, REMOTE_PROTOCOL_VERSION, RemoteFacts, RemoteHello, RemoteReply, RemoteRequest, RunAt,
};
use tandem_core::store::{Session, SessionState};

use crate::context::Context;
use crate::error::CliError;

/// The remote end of `ssh HOST tandem proxy` (used by tandem itself)
#[derive(clap::Args, Debug)]
pub struct ProxyArgs {}

pub fn run(cx: &Context, _args: &ProxyArgs) -> Result<(), CliError> {
    let mut input = BufReader::new(std::io::stdin().lock());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let Some(theirs) = protocol::recv_request::<RemoteHello>(&mut input)? else { return Ok(()) };
    send(&out, &RemoteHello::ours())?;
    if theirs.protocol != REMOTE_PROTOCOL_VERSION {
        // The other end names both versions and the fix.
        return Ok(());
    }
    let Some(request) = protocol::recv_request::<RemoteRequest>(&mut input)? else { return Ok(()) };
    let reply = match request {
        RemoteRequest::Facts => facts(cx),
        RemoteRequest::Rows { archived } => rows(cx, archived),
        RemoteRequest::Repo { url, name, key } => repo(cx, url.as_deref(), &name, &key),
        RemoteRequest::Fetch { name } => fetch(cx, &name),
        RemoteRequest::Run { args, at, env_files } => return run_command(cx, &out, args, &at, env_files),
        RemoteRequest::Attach { name, rows, cols } => return attach(cx, &out, input, &name, rows, cols),
    };
    send(&out, &reply.unwrap_or_else(|e| error_reply(&e)))
}

fn send(out: &Mutex<std::io::Stdout>, reply: &impl serde::Serialize) -> Result<(), CliError> {
    let mut out = out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    protocol::send(&mut *out, reply)?;
    Ok(())
}

/// A CLI error as the other end prints it: message and hint.
fn error_reply(e: &CliError) -> RemoteReply {
    match e {
        CliError::Failed(failure) => {
            RemoteReply::Error { message: failure.head().to_owned(), hint: failure.hints.first().cloned() }
        }
        other => RemoteReply::Error { message: other.to_string(), hint: None },
    }
}

fn facts(cx: &Context) -> Result<RemoteReply, CliError> {
    let git = Command::new("git")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("git does not run: {e}"));
    let sessions = if cx.paths.database().exists() {
        let store = cx.store()?;
        store
            .repos()?
            .into_iter()
            .map(|(id, _, _)| {
                store.sessions(id).map(|s| s.iter().filter(|s| s.state != SessionState::Archived).count())
            })
            .sum::<Result<usize, _>>()?
    } else {
        0
    };
    let supervisor = tandem_core::connection::connect_existing(&cx.paths).ok().flatten().is_some();
    let disk_free = nix::sys::statvfs::statvfs(&nearest_existing(&cx.paths.state_dir))
        .map(|s| s.blocks_available() * s.fragment_size())
        .unwrap_or(0);
    Ok(RemoteReply::Facts(RemoteFacts {
        tandem: env!("CARGO_PKG_VERSION").to_owned(),
        git,
        arch: std::env::consts::ARCH.to_owned(),
        load: std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        sessions,
        supervisor,
        survives_logout: survives_logout(),
        disk_free,
    }))
}

fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/")).to_owned()
}

/// How a supervisor started here outlives the login: `systemd` (a user
/// manager runs and the user lingers), `systemd-no-linger` (it runs, but
/// logging out ends the user's services), or `setsid` (no user manager:
/// the supervisor is started in its own session, outside the login's).
pub fn survives_logout() -> String {
    if !user_systemd() {
        return "setsid".to_owned();
    }
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
    let linger = Command::new("loginctl")
        .args(["show-user", &user, "--property=Linger", "--value"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "yes");
    if linger { "systemd" } else { "systemd-no-linger" }.to_owned()
}

/// Whether a systemd user manager answers (`systemctl --user`).
fn user_systemd() -> bool {
    Command::new("systemctl")
        .args(["--user", "show-environment"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts this machine's supervisor as a systemd user service when a
/// user manager runs (so it outlives the SSH login even where logind
/// ends a login's processes), unless one runs already. Elsewhere the
/// client starts it as usual, in a session of its own.
fn ensure_supervisor(cx: &Context) {
    if tandem_core::connection::connect_existing(&cx.paths).ok().flatten().is_some() || !user_systemd() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut cmd = Command::new("systemd-run");
    cmd.args(["--user", "--unit", "tandem-supervisor", "--collect", "--quiet"]);
    for var in ["TANDEM_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "PATH"] {
        if let Ok(value) = std::env::var(var) {
            cmd.arg(format!("--setenv={var}={value}"));
        }
    }
    let started = cmd
        .arg("--")
        .arg(exe)
        .args(["daemon", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if started {
        // The client's connect waits for the socket.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline
            && tandem_core::connection::connect_existing(&cx.paths).ok().flatten().is_none()
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

fn rows(cx: &Context, archived: bool) -> Result<RemoteReply, CliError> {
    ensure_supervisor(cx);
    let tandem = cx.tandem()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let now = tandem_core::unix_now();
    if cx.paths.database().exists() {
        let quiet = crate::context::user_config(&cx.paths).supervisor.quiet_secs;
        for (root, listing) in tandem.rows_everywhere(archived, quiet, true)? {
            for mut row in listing.rows {
                row.repo = Some(root.clone());
                rows.push(row);
            }
            notes.extend(listing.notes);
        }
    }
    Ok(RemoteReply::Rows { rows, now, notes })
}

/// The one live session called `name` among every repository here, with
/// its repository's main folder.
fn find(cx: &Context, name: &str) -> Result<(PathBuf, Session), CliError> {
    let store = cx.store()?;
    let mut found = Vec::new();
    for (id, _, root) in store.repos()? {
        if let Some(session) = store.session_by_slug(id, name)? {
            found.push((root, session));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CliError::Failed(
            tandem_core::error::Failure::new(
                tandem_core::error::ErrorKind::NotFound,
                format!("no session is named `{}` here", tandem_core::text::visible(name)),
            )
            .hinted("`tandem list` shows every host's sessions"),
        )),
        n => Err(CliError::user(format!(
            "{n} repositories here have a session named `{}`; run the command on this host in the one you mean",
            tandem_core::text::visible(name)
        ))),
    }
}

/// `url` without what two spellings of one repository's URL differ by.
fn normal_url(url: &str) -> &str {
    url.trim().trim_end_matches('/').trim_end_matches(".git")
}

fn repo(cx: &Context, url: Option<&str>, name: &str, key: &str) -> Result<RemoteReply, CliError> {
    let folder_ok = |s: &str, max| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !s.starts_with('.')
    };
    if !folder_ok(name, 64) || !folder_ok(key, 16) {
        return Err(CliError::user("the repository's name or key holds characters a folder name cannot"));
    }
    if let Some(url) = url {
        if cx.paths.database().exists() {
            for (_, _, root) in cx.store()?.repos()? {
                let origin = git::config_get(&root, "remote.origin.url").ok().flatten();
                if root.is_dir() && origin.as_deref().map(normal_url) == Some(normal_url(url)) {
                    return Ok(RemoteReply::Repo { path: root, how: "found".to_owned() });
                }
            }
        }
        let clone = cx.paths.data_dir.join("repos").join(format!("{name}-{key}"));
        if clone.join(".git").is_dir() {
            return Ok(RemoteReply::Repo { path: clone, how: "found".to_owned() });
        }
        std::fs::create_dir_all(clone.parent().expect("has a parent"))?;
        let cloned = git::command(&cx.paths.data_dir)
            .args(["clone", "-q", "--", url])
            .arg(&clone)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .output();
        if cloned.is_ok_and(|o| o.status.success()) {
            return Ok(RemoteReply::Repo { path: clone, how: "cloned".to_owned() });
        }
        let _ = std::fs::remove_dir_all(&clone);
    }
    let mirror = cx.paths.data_dir.join("mirrors").join(format!("{name}-{key}"));
    if !mirror.join(".git").is_dir() {
        std::fs::create_dir_all(&mirror)?;
        git::run(&mirror, &["init", "-q", "-b", "main"])?;
        // The caller pushes the base into the checked-out branch: update
        // the (never edited) working tree with it.
        git::run(&mirror, &["config", "receive.denyCurrentBranch", "updateInstead"])?;
    }
    Ok(RemoteReply::Repo { path: mirror, how: "mirror".to_owned() })
}

fn fetch(cx: &Context, name: &str) -> Result<RemoteReply, CliError> {
    let (root, session) = find(cx, name)?;
    let head = git::resolve_commit(&root, &format!("refs/heads/{}", session.branch))?
        .ok_or_else(|| CliError::user(format!("session `{name}`'s branch {} is gone here", session.branch)))?;
    let (mut wip, mut wip_ref) = (None, None);
    if session.path.is_dir() {
        let status = git::status(&session.path)?;
        if status.changed + status.untracked > 0 {
            let scratch = cx.paths.session_dir(&session.id);
            std::fs::create_dir_all(&scratch)?;
            let commit = git::snapshot_commit(&session.path, &scratch, "tandem fetch: uncommitted work", &[])?;
            let refname = format!("refs/tandem/fetch/{}", session.id);
            let _ = git::delete_ref(&root, &refname); // the last fetch's
            git::create_ref(&root, &refname, &commit)?;
            wip = Some(commit);
            wip_ref = Some(refname);
        }
    }
    Ok(RemoteReply::Fetched { repo: root, branch: session.branch, head, wip, wip_ref })
}

/// Runs `tandem ARGS` here, its stdout in data frames and its stderr in
/// [`RemoteReply::Stderr`] frames as they come, then its exit code.
fn run_command(
    cx: &Context,
    out: &Arc<Mutex<std::io::Stdout>>,
    mut args: Vec<String>,
    at: &RunAt,
    env_files: Vec<Vec<u8>>,
) -> Result<(), CliError> {
    let dir = match at {
        RunAt::Home => std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from),
        RunAt::Repo { path } => path.clone(),
        RunAt::Session { name } => match find(cx, name) {
            Ok((root, _)) => root,
            Err(e) => return send(out, &error_reply(&e)),
        },
    };
    let exe = std::env::current_exe()?;
    // Each env file's text reaches the command through a pipe: never
    // written to this machine's disk.
    let mut pipes: Vec<(OwnedFd, Vec<u8>)> = Vec::new();
    let mut keep: Vec<OwnedFd> = Vec::new();
    for (i, text) in env_files.into_iter().enumerate() {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        // The read end is the child's: not closed on exec.
        nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
            .map_err(std::io::Error::from)?;
        let placeholder = format!("{{env-file {i}}}");
        let path = format!("/dev/fd/{}", read.as_raw_fd());
        for arg in &mut args {
            if *arg == placeholder {
                arg.clone_from(&path);
            }
        }
        keep.push(read);
        pipes.push((write, text));
    }
    let child = Command::new(exe)
        .args(&args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    drop(keep);
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return send(out, &RemoteReply::Error { message: format!("cannot run tandem here: {e}"), hint: None });
        }
    };
    for (write, text) in pipes {
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(write);
            let _ = file.write_all(&text);
        });
    }
    let stderr = child.stderr.take().map(|mut err| {
        let out = Arc::clone(out);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if send(&out, &RemoteReply::Stderr { text }).is_err() {
                    break;
                }
            }
        })
    });
    if let Some(mut stdout) = child.stdout.take() {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut o = out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if protocol::write_frame(&mut *o, KIND_DATA, &buf[..n]).is_err() {
                let _ = child.kill();
                break;
            }
        }
    }
    if let Some(t) = stderr {
        let _ = t.join();
    }
    let status = child.wait()?;
    send(out, &RemoteReply::Exit { code: status.code() })
}

/// Bridges the link to session `name`'s host as an attach client: after
/// [`RemoteReply::Attached`], bytes flow unchanged both ways (frames of
/// the host protocol) until either side ends.
fn attach(
    cx: &Context,
    out: &Arc<Mutex<std::io::Stdout>>,
    mut input: BufReader<std::io::StdinLock<'static>>,
    name: &str,
    rows: u16,
    cols: u16,
) -> Result<(), CliError> {
    let session = match find(cx, name) {
        Ok((_, session)) => session,
        Err(e) => return send(out, &error_reply(&e)),
    };
    let session = crate::commands::attach::wake(cx, &session).unwrap_or(session);
    let mode = protocol::ClientMode::Attach { rows, cols };
    let stream = match tandem_core::host::client::connect(&cx.paths, &session.id, mode) {
        Ok(stream) => stream,
        Err(_) => {
            let failure = tandem_core::error::Failure::new(
                tandem_core::error::ErrorKind::Conflict,
                format!("session {} is not running", session.slug),
            )
            .hinted(format!("start it again with `tandem respawn {}`", session.slug));
            return send(out, &RemoteReply::Error { message: failure.message, hint: failure.hints.first().cloned() });
        }
    };
    send(out, &RemoteReply::Attached { name: session.slug.clone() })?;
    let mut from_host = stream.try_clone()?;
    let to_host = stream;
    let pump = std::thread::spawn(move || {
        let mut stdout = std::io::stdout();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from_host.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).and_then(|()| stdout.flush()).is_err() {
                break;
            }
        }
        let _ = from_host.shutdown(std::net::Shutdown::Both);
    });
    let mut to_host_w = &to_host;
    let _ = std::io::copy(&mut input, &mut to_host_w);
    let _ = to_host.shutdown(std::net::Shutdown::Both);
    let _ = pump.join();
    Ok(())
}
