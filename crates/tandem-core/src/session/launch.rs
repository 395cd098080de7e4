//! Launching an agent: the one path that turns a session into a running
//! host (issue 18). `tandem new`, `fork`, `review` and a task's trials
//! reach it through [`super::create`] (after [`prepare`]); `respawn` and
//! `restore` through [`Launch::again`].
//!
//! In order: the agent's argument vector (Claude Code's conversation and
//! hooks, [`argv`]), its environment ([`environment`]), the sandbox around
//! it ([`fence`]), the [`HostSpec`], and `tandem host` started and waited
//! on until it reports ([`start_host`]).
//!
//! It lives in `session/`, the lifecycle (plan, create, launch, end,
//! repair), rather than in `supervisor/`: it needs no supervisor state,
//! only the paths, the `tandem` binary, a store and the repository, so a
//! supervisor request stays a few lines and core never calls back into
//! the supervisor. Every failure is a [`LaunchError`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::agent::{AgentError, Conversation};
use crate::config::Config;
use crate::git::{self, GitError};
use crate::host::{HostReady, HostSpec};
use crate::paths::{Paths, PathsError};
use crate::protocol::{self, HOST_PROTOCOL_VERSION};
use crate::repo::Repository;
use crate::sandbox::{Fence, SandboxError};
use crate::sandbox_git::PrivateGitError;
use crate::store::{Session, Store, StoreError};

use super::env::EnvError;

/// Why an agent did not start. [`super::SessionError::Launch`] carries
/// it across the supervisor's requests.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The store could not be read or written (approvals, the session's
    /// port).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The agent's environment cannot be made (`--env`, an env file).
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The sandbox around the agent cannot be set up.
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// `fork`: the source's uncommitted work (a snapshot commit) could not
    /// be put into the new worktree.
    #[error("cannot put the uncommitted work ({commit}) into the new worktree: {source}")]
    Overlay {
        commit: String,
        #[source]
        source: GitError,
    },
    /// A trial's brief could not be written to `.tandem/brief.md`.
    #[error("cannot write the brief: {0}")]
    Brief(#[source] io::Error),
    /// `review`: the start commit could not be kept under
    /// `refs/tandem/review/<id>`.
    #[error("cannot keep the review's start commit: {0}")]
    ReviewStart(#[source] GitError),
    /// `review`: the checkout could not be made read-only.
    #[error("cannot make the review checkout read-only: {0}")]
    ReadOnly(#[source] io::Error),
    /// `sessions/<id>/host.log` could not be opened.
    #[error("cannot open the host's log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `tandem host` could not be run.
    #[error("cannot start `{} host`: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The spec could not be written to the host's stdin.
    #[error("cannot hand the host its spec: {0}")]
    Handoff(#[source] io::Error),
    /// The host ended (or wrote something else) before its report.
    #[error("the host exited before starting the agent; see {}", log.display())]
    NoReport { log: PathBuf },
    /// The host reported that the agent did not start: `message`, its
    /// error chain.
    #[error("{message}")]
    Failed { message: String },
}

impl LaunchError {
    /// Whether the host was started, or tried, and the agent did not
    /// come up: `restore` then keeps the restored session and says so in
    /// a note, where an earlier failure (environment, sandbox) fails it.
    #[must_use]
    pub fn host_failed(&self) -> bool {
        matches!(
            self,
            LaunchError::Log { .. }
                | LaunchError::Spawn { .. }
                | LaunchError::Handoff(_)
                | LaunchError::NoReport { .. }
                | LaunchError::Failed { .. }
        )
    }
}

/// Why a session's sandbox cannot be set up ([`fence`]).
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// Its runtime is gone, or the config's sandbox settings are bad now.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The runtime folder cannot be made.
    #[error(transparent)]
    Paths(#[from] PathsError),
    /// The sandbox's channel cannot be made.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The private repository the agent works in cannot be prepared.
    #[error(transparent)]
    PrivateGit(#[from] PrivateGitError),
}

/// Where and with what agents are launched: what every launch shares.
#[derive(Clone, Copy)]
pub struct Launcher<'a> {
    pub paths: &'a Paths,
    /// The `tandem` binary: run as `tandem host`, and named in Claude
    /// Code's hooks.
    pub exe: &'a Path,
    pub store: &'a Store,
    /// The session's repository and its config (approvals are checked
    /// here, not assumed).
    pub repo: &'a Repository,
    pub config: &'a Config,
}

/// One start of a session's agent.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The agent's command (program and arguments), before Claude Code's
    /// instrumentation and the sandbox's wrapping.
    pub argv: Vec<String>,
    /// The caller's environment (`tandem new`'s; at a respawn the
    /// session's, recorded then), layered under the rest
    /// ([`environment`]).
    pub env: &'a [(String, String)],
    /// The values of the session's env files, read once
    /// ([`super::env::env_files`]).
    pub files: &'a [super::env::EnvFile],
    /// The terminal's size, in cells.
    pub rows: u16,
    pub cols: u16,
    /// A first prompt, typed in after the start (or a structured agent's
    /// first message).
    pub typed_input: Option<String>,
    /// `fork`: the conversation (Claude Code's session id) the agent
    /// starts as a copy of.
    pub fork_of: Option<&'a str>,
    /// `rewind --conversation`: the message of the agent's own
    /// conversation it resumes up to ([`crate::agent::resumes_at_message`]).
    pub resume_at: Option<&'a str>,
}

impl<'a> Launch<'a> {
    /// A session's agent started again (`respawn`, `restore`): its
    /// command resolved anew from the agent's name (the stored one has
    /// its secrets masked), no first prompt, and its own conversation,
    /// resumed where the agent can.
    ///
    /// # Errors
    /// [`AgentError`] when the agent's command is not found any more.
    pub fn again(
        session: &Session,
        env: &'a [(String, String)],
        files: &'a [super::env::EnvFile],
        rows: u16,
        cols: u16,
    ) -> Result<Self, AgentError> {
        let spec = crate::agent::resolve(Some(&session.agent), None, env, &session.path)?;
        Ok(Launch { argv: spec.argv, env, files, rows, cols, typed_input: None, fork_of: None, resume_at: None })
    }
}

/// A started agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// Whether the agent resumed its earlier conversation.
    pub resumed: bool,
    pub host_pid: i32,
    pub agent_pid: i32,
}

impl Launcher<'_> {
    /// Starts `session`'s agent in a new host and waits for the host's
    /// report.
    ///
    /// # Errors
    /// [`LaunchError`]: the environment or sandbox cannot be made, or the
    /// host cannot start the agent.
    pub fn start(&self, session: &Session, launch: Launch<'_>) -> Result<Started, LaunchError> {
        let (argv, conversation) = argv(self.exe, session, launch.argv, launch.env, launch.fork_of, launch.resume_at);
        let resumed = matches!(conversation, Conversation::Resume(_));
        let env = environment(self.store, self.config, self.repo, launch.env, launch.files, session)?;
        let program = argv.first().map(Path::new);
        let (argv, forwards, cleanup) = match fence(self.paths, self.repo, self.config, session, &env, program)? {
            Some(fence) => {
                (fence.wrap(&argv, &env, true).map_err(FenceError::from)?, fence.forwards.clone(), fence.cleanup())
            }
            None => (argv, Vec::new(), None),
        };
        let spec = HostSpec {
            version: HOST_PROTOCOL_VERSION,
            session_id: session.id.clone(),
            argv,
            cwd: session.path.clone(),
            env,
            rows: launch.rows,
            cols: launch.cols,
            typed_input: launch.typed_input,
            agent: session.agent.clone(),
            conversation,
            forwards,
            cleanup,
            sandboxed: session.sandbox.is_some(),
        };
        let (host_pid, agent_pid) = start_host(self.paths, self.exe, &spec)?;
        Ok(Started { resumed, host_pid, agent_pid })
    }
}

/// What a new session's worktree gets before its agent starts, by how it
/// was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prepare<'a> {
    /// `fork`: a commit whose tree (untracked files included) is put into
    /// the worktree; HEAD stays.
    pub overlay: Option<&'a str>,
    /// A task's trial: its brief, written to `.tandem/brief.md`.
    pub brief: Option<&'a str>,
    /// `review`: its start commit is kept under `refs/tandem/review/<id>`
    /// and the checkout made read-only.
    pub review: bool,
}

/// Readies `session`'s new worktree as `what` asks.
///
/// # Errors
/// [`LaunchError::Overlay`], [`LaunchError::Brief`],
/// [`LaunchError::ReviewStart`], [`LaunchError::ReadOnly`].
pub fn prepare(repo: &Repository, session: &Session, what: &Prepare<'_>) -> Result<(), LaunchError> {
    if let Some(commit) = what.overlay {
        git::run(&session.path, &["restore", "--source", commit, "--worktree", "--", "."])
            .map_err(|source| LaunchError::Overlay { commit: commit.to_owned(), source })?;
    }
    if let Some(brief) = what.brief {
        write_brief(&repo.common_dir, &session.path, brief).map_err(LaunchError::Brief)?;
    }
    if what.review {
        let start = git::read(&session.path, &["rev-parse", "HEAD"]).map_err(LaunchError::ReviewStart)?;
        git::create_ref(&session.path, &crate::ship::review::start_ref(&session.id), &start)
            .map_err(LaunchError::ReviewStart)?;
        crate::ship::review::make_read_only(&session.path).map_err(LaunchError::ReadOnly)?;
    }
    Ok(())
}

/// Writes the brief to `<worktree>/.tandem/brief.md`, and `/.tandem/` to
/// the repository's `info/exclude` (in `common_dir`) so git never sees it.
///
/// # Errors
/// I/O errors.
pub fn write_brief(common_dir: &Path, worktree: &Path, text: &str) -> std::io::Result<()> {
    let exclude = common_dir.join("info").join("exclude");
    let current = std::fs::read_to_string(&exclude).unwrap_or_default();
    if !current.lines().any(|l| l == "/.tandem/") {
        std::fs::create_dir_all(common_dir.join("info"))?;
        let sep = if current.is_empty() || current.ends_with('\n') { "" } else { "\n" };
        std::fs::write(&exclude, format!("{current}{sep}/.tandem/\n"))?;
    }
    std::fs::create_dir_all(worktree.join(".tandem"))?;
    std::fs::write(worktree.join(".tandem").join("brief.md"), text)
}

/// What a host runs for `session`: `argv`, plus what makes the agent
/// report to tandem (Claude Code: its conversation id and the hooks, which
/// run `exe`; see [`crate::agent::claude`]), and which conversation it
/// opens: a fork of `fork_of` (another session's conversation) when given,
/// else the session's own, resumed where the agent can
/// ([`crate::agent::conversation`]); a resumed one only up to `resume_at`
/// where the agent can ([`crate::agent::resumes_at_message`]). Returns
/// the argument vector and the conversation.
#[must_use]
pub fn argv(
    exe: &Path,
    session: &Session,
    argv: Vec<String>,
    env: &[(String, String)],
    fork_of: Option<&str>,
    resume_at: Option<&str>,
) -> (Vec<String>, Conversation) {
    use crate::agent::claude;
    if !crate::agent::reports_state(&session.agent) {
        return (argv, Conversation::Any);
    }
    let conversation = crate::agent::conversation(&session.agent, fork_of, session.agent_session.as_deref(), |id| {
        claude::has_transcript(env, &session.path, id)
    });
    let argv = if crate::agent::is_claude(&session.agent) {
        // The structured mode reports through its own output, not hooks.
        let argv = claude::instrument(argv, exe, &conversation, session.agent == "claude");
        match resume_at {
            Some(message) if crate::agent::resumes_at_message(&session.agent) => claude::resume_at(argv, message),
            _ => argv,
        }
    } else {
        argv
    };
    (argv, conversation)
}

/// The agent's environment ([`super::env::layered`]: the caller's,
/// `[env]`, env files, `--env`, tandem's own with the session's
/// `TANDEM_PORT`, claimed here), plus what the agent needs
/// ([`crate::agent::extra_env`]). `[env]` values the repository set reach
/// the agent only once approved ([`super::repo_hooks::approved_config`]).
///
/// # Errors
/// [`LaunchError::Store`].
pub fn environment(
    store: &Store,
    config: &Config,
    repo: &Repository,
    env: &[(String, String)],
    files: &[super::env::EnvFile],
    session: &Session,
) -> Result<Vec<(String, String)>, LaunchError> {
    let config = super::repo_hooks::approved_config(store, repo, config)?;
    let port = store.claim_port(&session.id, config.ports.base, config.ports.block)?;
    let mut env = super::env::layered(env, &config, session, files, &repo.root, Some(port)).vars;
    let extra = crate::agent::extra_env(&session.agent, &session.path, &env);
    env.extend(extra);
    Ok(env)
}

/// The sandbox `session`'s agent (or a hook, `program` none) runs in, its
/// channel and private repository made; `None` when it is not sandboxed.
///
/// # Errors
/// [`FenceError::Sandbox`]: its runtime is gone, or the config's sandbox
/// settings are bad now; the others when its folders cannot be made.
pub fn fence(
    paths: &Paths,
    repo: &Repository,
    config: &Config,
    session: &Session,
    env: &[(String, String)],
    program: Option<&Path>,
) -> Result<Option<Fence>, FenceError> {
    let Some(mode) = session.sandbox else { return Ok(None) };
    let fence = Fence::new(mode, paths, repo, config, session, env, program)?;
    paths.ensure_runtime_dir()?;
    crate::paths::create_private(&fence.channel)?;
    crate::sandbox_git::prepare(paths, repo, session, &fence.admin)?;
    Ok(Some(fence))
}

/// The file name of the host binary, installed beside `tandem`.
pub const HOST_BINARY: &str = "tandem-host";

/// How a host is started for the supervisor running `exe`: the
/// [`HOST_BINARY`] beside it, which holds a host's code alone (its
/// private, relocated data is a fifth of `tandem`'s, and each of the
/// hundreds of hosts a machine may run pays it), else `exe host` (a
/// `tandem` copied somewhere alone).
#[must_use]
pub fn host_command(exe: &Path) -> Command {
    let small = exe.with_file_name(HOST_BINARY);
    if std::fs::metadata(&small).is_ok_and(|m| m.is_file()) {
        Command::new(small)
    } else {
        let mut cmd = Command::new(exe);
        cmd.arg("host");
        cmd
    }
}

/// Starts a host for `spec`'s session, hands it the spec (a control
/// frame) and waits for its report. The host is forked by the
/// supervisor's host template ([`crate::host::template`]) when the
/// [`HOST_BINARY`] sits beside `exe`, else started by
/// [`host_command`]. The host's stderr goes to `sessions/<id>/host.log`;
/// it never lingers as a zombie (a forked host is reaped by the kernel,
/// as its template ignores `SIGCHLD`, or by init once the template is
/// gone; a started one by a thread of its own). Returns the host's and the
/// agent's pids.
///
/// # Errors
/// [`LaunchError::Log`], [`LaunchError::Spawn`], [`LaunchError::Handoff`],
/// [`LaunchError::NoReport`], or [`LaunchError::Failed`] with the host's
/// reason.
pub fn start_host(paths: &Paths, exe: &Path, spec: &HostSpec) -> Result<(i32, i32), LaunchError> {
    let log = paths.session_dir(&spec.session_id).join("host.log");
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&log)
        .map_err(|source| LaunchError::Log { path: log.clone(), source })?;
    let (stdin, stdout, child) = match fork_from_template(&exe.with_file_name(HOST_BINARY), &file) {
        Some((stdin, stdout)) => (stdin, stdout, None),
        None => {
            let mut cmd = host_command(exe);
            let program = PathBuf::from(cmd.get_program());
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(file)
                .spawn()
                .map_err(|source| LaunchError::Spawn { exe: program, source })?;
            let stdin = File::from(OwnedFd::from(child.stdin.take().expect("stdin is piped")));
            let stdout = File::from(OwnedFd::from(child.stdout.take().expect("stdout is piped")));
            (stdin, stdout, Some(child))
        }
    };
    let (mut stdin, mut stdout) = (stdin, stdout);
    let sent = protocol::send(&mut stdin, spec);
    drop(stdin);
    let report = sent.map(|()| protocol::recv::<HostReady>(&mut stdout));
    drop(stdout);
    if let Some(mut child) = child {
        std::thread::spawn(move || child.wait());
    }
    match report.map_err(LaunchError::Handoff)? {
        Ok(Some(HostReady::Running { host_pid, agent_pid, .. })) => Ok((host_pid, agent_pid)),
        Ok(Some(HostReady::Failed { message, .. })) => Err(LaunchError::Failed { message }),
        // Nothing, or not a report: the host's log says why.
        Ok(None) | Err(_) => Err(LaunchError::NoReport { log }),
    }
}

/// This process's host template ([`crate::host::template`]): started
/// with the first host forked, dropped (and so ended) when it fails.
static TEMPLATE: Mutex<Slot> = Mutex::new(Slot { template: None, refused: None });

/// How long a template may take to say hello, or to answer a request,
/// before it is given up for `exec`.
const TEMPLATE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after a template could not be started (a `tandem-host` of a
/// release before templates, say, which never says hello) hosts are
/// started with `exec` without trying again.
const TEMPLATE_RETRY: Duration = Duration::from_secs(60);

struct Slot {
    template: Option<Template>,
    /// The binary that could not be made a template, and when.
    refused: Option<(PathBuf, Instant)>,
}

/// A running `tandem-host template` and this process's end of its socket.
struct Template {
    binary: PathBuf,
    child: Child,
    socket: UnixStream,
}

impl Template {
    /// Starts `binary` as a template and waits for its hello
    /// ([`crate::host::template::HELLO`]), at most [`TEMPLATE_TIMEOUT`];
    /// the socket keeps that timeout both ways.
    fn start(binary: &Path) -> io::Result<Self> {
        let (socket, theirs) = UnixStream::pair()?;
        socket.set_read_timeout(Some(TEMPLATE_TIMEOUT))?;
        socket.set_write_timeout(Some(TEMPLATE_TIMEOUT))?;
        let child = Command::new(binary)
            .arg(crate::host::template::TEMPLATE_ARG)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .spawn()?;
        let template = Template { binary: binary.to_owned(), child, socket };
        crate::host::template::hello(&template.socket)?;
        Ok(template)
    }
}

impl Drop for Template {
    /// Ends the template; the hosts it forked keep running (they are not
    /// its children).
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host forked by this process's template, which is started first
/// when there is none (or it failed: one new template is tried): the
/// host's stdin (for the spec) and stdout (for its report), its stderr
/// `log`. `None` when there is no `binary`, no template can fork, or one
/// could not be started in the last [`TEMPLATE_RETRY`]: the caller
/// starts the host itself.
fn fork_from_template(binary: &Path, log: &File) -> Option<(File, File)> {
    if !std::fs::metadata(binary).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut slot = TEMPLATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if slot.refused.as_ref().is_some_and(|(refused, at)| refused == binary && at.elapsed() < TEMPLATE_RETRY) {
        return None;
    }
    for _ in 0..2 {
        let (stdin_read, stdin_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        let (stdout_read, stdout_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        let template = match slot.template.take() {
            Some(template) if template.binary == binary => template,
            _ => match Template::start(binary) {
                Ok(template) => template,
                Err(e) => {
                    tracing::warn!(error = %e, binary = %binary.display(), "cannot start the host template");
                    slot.refused = Some((binary.to_owned(), Instant::now()));
                    return None;
                }
            },
        };
        match crate::host::template::request(&template.socket, [stdin_read.as_fd(), stdout_write.as_fd(), log.as_fd()])
        {
            Ok(()) => {
                slot.template = Some(template);
                return Some((File::from(stdin_write), File::from(stdout_read)));
            }
            // A host forked before the template failed reads no spec and
            // ends: the pipes' other ends close here.
            Err(e) => tracing::warn!(error = %e, "the host template failed; starting another"),
        }
    }
    None
}
