// Whole on purpose (issue 18): the wire in one file, every message and
// the frame format side by side, so a change to one is read with the rest.
//! Messages between the CLI, the supervisor and session hosts.
//!
//! # Frames
//! Every message travels in a frame: `[len: u32 big-endian][kind: u8][payload]`,
//! where `len` counts the kind byte and the payload and is at most
//! [`MAX_FRAME_LEN`]. Kind [`KIND_CONTROL`] carries one JSON message,
//! kind [`KIND_DATA`] raw terminal bytes (keys to a host, output from it).
//!
//! # Order
//! A client's first frame is a `hello` carrying its version; the server
//! answers with its own `hello`/`welcome` or an error, then the exchange
//! below goes on. A host's first frame, on its stdin, is the
//! [`crate::host::HostSpec`] from the supervisor that started it, and its
//! first on its stdout the [`crate::host::HostReady`] report.
//!
//! # Versions
//! Two counters, because the two ends of each link age differently.
//! - [`PROTOCOL_VERSION`]: the CLI ↔ supervisor messages ([`Request`],
//!   [`Response`]). Both ends are the one installed binary, so a
//!   supervisor whose version differs is replaced by the CLI (`tandem
//!   daemon stop`, then started anew); no range.
//! - [`HOST_PROTOCOL_VERSION`]: everything that reaches a host (the
//!   spec and ready report on its stdin and stdout, [`ClientMsg`] and
//!   [`HostMsg`] on its sockets). A host runs as long as its agent, across
//!   upgrades of tandem, so every build speaks each host version in
//!   [`HOST_PROTOCOL_MIN`]`..=`[`HOST_PROTOCOL_VERSION`]:
//!   - a client's hello names the oldest version it speaks (`version`, the
//!     one field a host of protocol 6 read, which took exactly its own)
//!     and the newest (`newest`);
//!   - a host welcomes it with the newest version both speak
//!     ([`agree_host_version`]), or answers an error when they share none;
//!     both then use that version's messages, the host keeping an older
//!     client's forms;
//!   - a client accepts a welcome whose version is in its own range;
//!   - the spec carries the supervisor's version, and the host starts the
//!     agent only when it speaks it; its report carries the version too.
//!     A protocol 6 supervisor wrote the spec as one JSON line (a frame
//!     starts with a zero byte, a JSON object with `{`): hosts still take
//!     that line and answer it with one.
//!
//!   Bump [`HOST_PROTOCOL_VERSION`] on any change an older peer would
//!   misread; raise [`HOST_PROTOCOL_MIN`] only to drop a version, which
//!   strands the hosts still running it. So upgrading tandem never strands
//!   a running agent whose host speaks a version at or above the new
//!   build's minimum.
//!
//! # Trust
//! Sockets live in a 0700 directory and every accepted connection's peer
//! uid must equal the server's (`SO_PEERCRED`); frames above the cap are
//! refused before anything is allocated. A server reads what clients send
//! with the lower [`MAX_REQUEST_LEN`] ([`read_request_frame`],
//! [`recv_request`]), and a frame's buffer grows only as its bytes
//! arrive, so a connection holds at most that much memory however large
//! a length it announces.

use std::io::{self, Read, Write};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::model::error::{ErrorKind, Failure};
use crate::model::{ConflictReport, Finding, GcReport, GitFacts, Session, SessionState, Task};

/// The CLI ↔ supervisor protocol ([`Request`], [`Response`]): bumped on
/// any incompatible change to them (7: the task and record requests; 8: rename, the environment choice and wake of respawn and fork;
/// 9: a session's creator, which an older supervisor would drop; 10:
/// other hosts' sessions in a conflicts request; 11: the checkpoints `gc`
/// drops; 12: the watch budget in `Status`; 13: `list` from any folder,
/// answering the repository's root and the last messages; 14: `list`'s
/// text rendered by the supervisor and `status`'s counts). A
/// supervisor of another version is replaced (see "Versions" above).
pub const PROTOCOL_VERSION: u32 = 14;
/// The newest host protocol this build speaks (spec, ready report,
/// [`ClientMsg`], [`HostMsg`]): bumped on any change an older peer would
/// misread. 7: the spec and ready report are frames carrying the version,
/// and a client's hello names a range.
pub const HOST_PROTOCOL_VERSION: u32 = 7;
/// The oldest host protocol this build still speaks, as a client and as a
/// host: raising it strands the hosts of older releases still running.
pub const HOST_PROTOCOL_MIN: u32 = 6;

/// The host protocol version a client speaking `client` and a host
/// speaking `host` use: the newest both speak, or `None` when they share
/// none. Ranges are inclusive version numbers.
#[must_use]
pub fn agree_host_version(client: RangeInclusive<u32>, host: RangeInclusive<u32>) -> Option<u32> {
    let newest = (*client.end()).min(*host.end());
    (newest >= (*client.start()).max(*host.start())).then_some(newest)
}
/// The largest frame accepted, in bytes (kind byte included).
pub const MAX_FRAME_LEN: usize = 4 << 20;
/// The largest frame a server (supervisor, host) accepts from a client,
/// in bytes (kind byte included): a request, a prompt, keys, a hook
/// event. Replies may be larger (up to [`MAX_FRAME_LEN`]).
pub const MAX_REQUEST_LEN: usize = 1 << 20;
/// A frame holding one JSON message.
pub const KIND_CONTROL: u8 = 0;
/// A frame holding raw terminal bytes.
pub const KIND_DATA: u8 = 1;

/// Writes one frame.
///
/// # Errors
/// I/O errors, or `InvalidInput` when the payload exceeds the cap.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let len = payload.len() + 1;
    if len > MAX_FRAME_LEN {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame too large"));
    }
    let mut buf = Vec::with_capacity(len + 4);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.push(kind);
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one frame: `Ok(None)` on a clean end of stream between frames.
///
/// # Errors
/// I/O errors; `InvalidData` for an empty or oversized frame.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    read_frame_within(r, MAX_FRAME_LEN)
}

/// Reads one frame a client sent to a server: as [`read_frame`], with
/// the cap [`MAX_REQUEST_LEN`].
///
/// # Errors
/// I/O errors; `InvalidData` for an empty or oversized frame.
pub fn read_request_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    read_frame_within(r, MAX_REQUEST_LEN)
}

/// Reads one frame of at most `max` bytes. The length is checked before
/// anything is read past it, and the buffer grows with the bytes that
/// arrive, not with the length announced.
fn read_frame_within(r: &mut impl Read, max: usize) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad frame length {len} (at most {max})")));
    }
    let mut kind = [0u8; 1];
    r.read_exact(&mut kind)?;
    let mut buf = Vec::with_capacity((len - 1).min(FRAME_CHUNK));
    let got = r.take((len - 1) as u64).read_to_end(&mut buf)?;
    if got != len - 1 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the frame ended early"));
    }
    Ok(Some((kind[0], buf)))
}

/// What a frame's buffer starts with, in bytes; it grows as bytes come.
const FRAME_CHUNK: usize = 64 * 1024;

/// Writes `msg` as a control frame.
///
/// # Errors
/// As [`write_frame`].
pub fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let json = serde_json::to_vec(msg).map_err(io::Error::other)?;
    write_frame(w, KIND_CONTROL, &json)
}

/// Reads the next control frame as `T`; `Ok(None)` at end of stream.
///
/// # Errors
/// I/O errors; `InvalidData` for a data frame or JSON that is not a `T`.
pub fn recv<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    decode(read_frame(r)?)
}

/// Reads the next control frame a client sent to a server as `T`, with
/// the cap [`MAX_REQUEST_LEN`]; `Ok(None)` at end of stream.
///
/// # Errors
/// As [`recv`].
pub fn recv_request<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    decode(read_request_frame(r)?)
}

/// A frame [`read_frame`] read, decoded as [`recv`] does.
///
/// # Errors
/// As [`recv`], but for reading.
pub fn decode<T: DeserializeOwned>(frame: Option<(u8, Vec<u8>)>) -> io::Result<Option<T>> {
    match frame {
        None => Ok(None),
        Some((KIND_CONTROL, payload)) => {
            serde_json::from_slice(&payload).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Some((kind, _)) => {
            Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected a control frame, got kind {kind}")))
        }
    }
}

/// A session of another host as conflict control takes it: its work as
/// one commit present in this repository (its branch, or a snapshot of
/// its uncommitted work on top), and its base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignSide {
    /// `HOST:NAME`.
    pub name: String,
    /// The commit standing for its work.
    pub state: String,
    /// Its base ref as named there (`main`), and the commit it had there.
    pub base: String,
    pub base_commit: String,
}

/// A request to the supervisor; one per connection after `hello`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Hello {
        version: u32,
    },
    /// Make a session and start its agent.
    Create(Box<CreateRequest>),
    /// Stop a session's agent (polite signals, grace period, SIGKILL).
    Stop {
        session_id: String,
    },
    /// Remove a session's worktree and branch. The session is named as
    /// the user typed it, in the repository that `cwd` is in, so the
    /// client needs no git of its own.
    Remove {
        cwd: PathBuf,
        name: String,
        force: bool,
        /// Answer only once git's bookkeeping (prune, branch deletion)
        /// is done too, not just before it.
        wait: bool,
        /// Delete the session's history too.
        purge: bool,
        /// The caller's environment, for teardown hooks.
        env: Vec<(String, String)>,
    },
    /// Stop the agent, snapshot, remove the worktree; keep the rest.
    Archive {
        session_id: String,
        env: Vec<(String, String)>,
    },
    /// Name a session tandem named from its first prompt (sent by
    /// `tandem hook`); answered at once, done in the background.
    AutoName {
        session_id: String,
        prompt: String,
        /// The agent's environment, for the one-shot call.
        env: Vec<(String, String)>,
    },
    /// A new session from another's current state: its commits, its
    /// uncommitted work, and a fork of its conversation where the agent
    /// can. `name`: the new session's, else `<source>-fork`.
    Fork {
        session_id: String,
        name: Option<String>,
        /// The caller's environment: used only where [`EnvChoice`] says
        /// (the source's environment is the fork's).
        env: Vec<(String, String)>,
        rows: u16,
        cols: u16,
        #[serde(default)]
        choice: EnvChoice,
    },
    /// Conflict control for the repository at `cwd`: what each live
    /// session touched, which pairs overlap or would conflict, and which
    /// would conflict with their base.
    Conflicts {
        cwd: PathBuf,
        /// Forget every cached answer first and compute all again.
        #[serde(default)]
        fresh: bool,
        /// Sessions of other hosts (issue 21), their work fetched into
        /// this repository: they enter the same matrix, under their
        /// `HOST:NAME`. The report with them is not kept as the latest
        /// (the marks `tandem list` shows stay this machine's).
        #[serde(default)]
        foreign: Vec<ForeignSide>,
    },
    /// The session's pull request was opened or changed by a command
    /// (`tandem pr`, `tandem merge --remote`): poll it now. `token` is the
    /// GitHub token the command used for `api_url`; the supervisor keeps
    /// it in memory only, for polling, and never stores it.
    WatchPull {
        session_id: String,
        api_url: String,
        token: String,
    },
    /// A review session of `session_id` (`tandem review`): a read-only
    /// checkout of its current state whose agent (`agent`, else the
    /// reviewed session's when it takes prompts, else the default) gets
    /// the diff and the brief as its prompt; see
    /// `ship::review`.
    Review {
        session_id: String,
        agent: Option<String>,
        name: Option<String>,
        env: Vec<(String, String)>,
        rows: u16,
        cols: u16,
    },
    /// Stop the session's agent if it runs, and start it again in the
    /// same worktree, resuming its conversation where the agent can.
    Respawn {
        session_id: String,
        /// The caller's environment: used only where [`EnvChoice`] says
        /// (the agent gets the session's).
        env: Vec<(String, String)>,
        rows: u16,
        cols: u16,
        #[serde(default)]
        choice: EnvChoice,
        /// Only if the supervisor stopped it for idleness
        /// ([`crate::session::idle_stop`]); else answer it as it is.
        #[serde(default)]
        wake: bool,
        /// Resume the conversation only up to this message of the agent's
        /// (`rewind --conversation`; [`crate::agent::resumes_at_message`]).
        #[serde(default)]
        resume_at: Option<String>,
    },
    /// Bring an archived session's worktree back and start its agent.
    Restore {
        session_id: String,
        env: Vec<(String, String)>,
        rows: u16,
        cols: u16,
    },
    /// The sessions of the repository `cwd` is in (any folder of it: the
    /// supervisor finds the repository, so the CLI runs no `git`) with
    /// their git facts: live ones, or archived ones. With `messages`,
    /// each one's agent's last message too ([`Listed::messages`]).
    List {
        cwd: PathBuf,
        archived: bool,
        #[serde(default)]
        messages: bool,
    },
    /// `tandem status`'s counts ([`crate::rows::tally`]) of the sessions
    /// of the repository `cwd` is in, or with `None` of every repository,
    /// with the `supervisor.quiet_secs` of the user's config and `env`:
    /// answered with
    /// [`Response::Tally`] (issue 23: the client then opens no database
    /// and reads no PTY log).
    Tally {
        cwd: Option<PathBuf>,
        /// The client's config variables ([`crate::config::config_env`]).
        env: Vec<(String, String)>,
    },
    /// `tandem list`'s text for the repository `cwd` is in, rendered as
    /// `view` says ([`crate::rows::table::frame`]) from the rows
    /// [`Request::List`] would give: answered with [`Response::Text`].
    /// The client then only prints it (issue 23).
    ListText {
        cwd: PathBuf,
        view: crate::model::ListView,
    },
    /// Drop archive refs and trash older than `older_than_secs`.
    Gc {
        cwd: PathBuf,
        older_than_secs: u64,
    },
    /// Find (and with `fix`, repair) what was done by hand.
    Doctor {
        cwd: PathBuf,
        fix: bool,
    },
    /// Answers once anything a session shows has changed since
    /// `generation` (a session's row or history, a worktree's files, a
    /// ref), or after [`CHANGES_WAIT`] with nothing changed: the agent
    /// view's push.
    Changes {
        generation: u64,
    },
    /// The supervisor's pid, start time and live hosts.
    Status,
    /// Exit the supervisor; hosts keep running.
    Shutdown,
    /// Start a task (`tandem task new`): under the repository's lock, name
    /// it and store it, then create its trials ([`crate::tasks`]).
    TaskNew(Box<TaskNewRequest>),
    /// Promote a trial of a task (`tandem task promote`): under the
    /// repository's lock its branch becomes `<task>/result` and the task
    /// records it; then the other trials are archived.
    TaskPromote {
        /// Where the command ran: finds the repository.
        cwd: PathBuf,
        /// The task's name.
        task: String,
        /// The trial: its number (`2`, `t2`) or its session's name.
        trial: String,
        /// The caller's environment (branch prefix, archive summaries).
        env: Vec<(String, String)>,
    },
    /// Rename a session (`tandem rename`): its name, its folder unless
    /// its agent runs in it, its branch unless pushed (`branch`: even
    /// then); the old name stays an alias.
    Rename {
        session_id: String,
        /// The new name.
        name: String,
        /// Rename a pushed branch too.
        #[serde(default)]
        branch: bool,
    },
    /// Set a task's status (`tandem task set --status`).
    TaskSetStatus {
        cwd: PathBuf,
        task: String,
        status: crate::model::TaskStatus,
    },
    /// A session's work landed (`tandem merge`): record `text` in its
    /// history, mark it done, and with `pull`, store its pull request as
    /// merged.
    Landed {
        session_id: String,
        text: String,
        #[serde(default)]
        pull: Option<crate::model::PrStatus>,
    },
    /// The user answered a session's permission request (`tandem approve`
    /// or `deny`): record it in its history (`asked`: what the agent
    /// asked, as shown) and mark the agent running again.
    Answered {
        session_id: String,
        allow: bool,
        asked: Option<String>,
    },
    /// A task's check ran on trial `session_id` at state `state` (a
    /// commit, see `tandem task show`): keep its result, so the same
    /// state is not checked again.
    CheckRan {
        session_id: String,
        state: String,
        command: String,
        result: crate::model::CheckResult,
    },
}

/// What `tandem new` asks for. Names are validated by the supervisor.
/// An env file's variables, as the command given `--env-file` read
/// them: sent over the private socket, kept in the supervisor's memory,
/// never stored (every value is a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFile {
    /// The file as given, made absolute.
    pub path: PathBuf,
    pub vars: Vec<(String, String)>,
}

/// How `respawn` and `fork` choose the agent's environment: by default
/// the session's own (recorded at `new`, secrets from the supervisor's
/// memory or read again), not the caller's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvChoice {
    /// `--env KEY=VALUE`: wins over the rest, and is kept with the
    /// session (the new one, for a fork) for its next starts.
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    /// `--env-file`: replace the session's env files.
    #[serde(default)]
    pub env_files: Vec<EnvFile>,
    /// `--env-from-shell`: the caller's environment instead of the
    /// session's, recorded as the session's from then on.
    #[serde(default)]
    pub from_shell: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRequest {
    /// Where `tandem new` ran: finds the repository and resolves `HEAD`.
    pub cwd: PathBuf,
    pub name: Option<String>,
    /// Free-text title.
    pub title: Option<String>,
    pub agent: Option<String>,
    pub prompt: Option<String>,
    /// `fresh`, `head` or a commit-ish; `None` for `base.default`.
    pub base: Option<String>,
    /// A branch to use as it is (existing) or to create.
    pub branch: Option<String>,
    /// A pull request number to fetch and check out.
    pub from_pr: Option<u64>,
    /// The environment of the `tandem new` call, given to the agent. Sent
    /// over the private socket only; recorded with the session without
    /// its secrets (`secrets::RecordedEnv`), whose values are never
    /// stored.
    pub env: Vec<(String, String)>,
    /// Initial terminal size, in cells.
    pub rows: u16,
    pub cols: u16,
    /// The conversation (Claude Code's session id) the new agent starts
    /// as a copy of (`tandem fork`).
    #[serde(default)]
    pub fork_of: Option<String>,
    /// A commit whose tree is put into the new worktree before the agent
    /// starts, without moving HEAD (`tandem fork`: the source's
    /// uncommitted work).
    #[serde(default)]
    pub overlay: Option<String>,
    /// The id of the session this one reviews (`tandem review`): the new
    /// session takes that session's base, and its checkout is made
    /// read-only.
    #[serde(default)]
    pub review_of: Option<String>,
    /// The task the new session is a trial of (`tandem task new`).
    #[serde(default)]
    pub task: Option<TrialOf>,
    /// `--env KEY=VALUE` pairs, and `--env-file` paths (absolute; their
    /// values are secrets, read at each start and never stored).
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    #[serde(default)]
    pub env_files: Vec<PathBuf>,
    /// The variables of `env_files`, read once by the command that was
    /// given them (a `<(…)` can be read only once). The supervisor keeps
    /// them in memory, never on disk.
    #[serde(default)]
    pub env_file_vars: Vec<EnvFile>,
    /// `--sandbox MODE` (`none`, `workspace`, `container`); none means
    /// `sandbox.mode`.
    #[serde(default)]
    pub sandbox: Option<String>,
    /// The id of the session whose agent asks for this one (`tandem mcp`
    /// run by that agent): recorded as the new session's creator.
    #[serde(default)]
    pub creator: Option<String>,
}

impl CreateRequest {
    /// What `tandem new` asks for when given nothing but where it runs
    /// (`cwd`) and the caller's environment (`env`): the default name,
    /// agent, base and sandbox, an 80×24 terminal, no extra variables.
    /// Front ends fill in what the user chose with struct update syntax.
    #[must_use]
    pub fn new(cwd: PathBuf, env: Vec<(String, String)>) -> CreateRequest {
        CreateRequest {
            cwd,
            name: None,
            title: None,
            agent: None,
            prompt: None,
            base: None,
            branch: None,
            from_pr: None,
            env,
            rows: 24,
            cols: 80,
            fork_of: None,
            overlay: None,
            review_of: None,
            task: None,
            vars: Vec::new(),
            env_files: Vec::new(),
            env_file_vars: Vec::new(),
            sandbox: None,
            creator: None,
        }
    }
}

/// A trial's place in its task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialOf {
    pub task_id: String,
    /// 1, 2, …
    pub trial: i64,
    /// The paths the brief gives it.
    pub owned: Vec<String>,
    /// Its brief, written to `.tandem/brief.md` in the worktree.
    pub brief: String,
    /// For a task's first trial, the task itself: the supervisor stores
    /// it with the trial's session, under the repository's lock, and
    /// drops it when that creation fails or is undone, so a task never
    /// stays without a trial (issue 17, finding 5).
    #[serde(default)]
    pub new_task: Option<Task>,
}

/// The supervisor's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Hello {
        version: u32,
        pid: u32,
    },
    /// `notes`: things the user should know (a fallback, a failed hook).
    Created {
        session: Box<Session>,
        notes: Vec<String>,
    },
    Stopped {
        session: Box<Session>,
    },
    Removed {
        report: RemoveReport,
        notes: Vec<String>,
    },
    Archived {
        session: Box<Session>,
        notes: Vec<String>,
    },
    Restored {
        session: Box<Session>,
        notes: Vec<String>,
    },
    Respawned {
        session: Box<Session>,
        /// Whether the agent resumed its earlier conversation.
        resumed: bool,
        /// What the user should know (a secret of the session's that
        /// could not be given again).
        #[serde(default)]
        notes: Vec<String>,
    },
    Collected(GcReport),
    Listed(Box<Listed>),
    /// The answer to [`Request::Tally`].
    Tally(crate::model::Tally),
    /// The answer to [`Request::ListText`]: the text for stdout and the
    /// notes for stderr, both printable as they are.
    Text(crate::model::Frame),
    Conflicts {
        report: Box<ConflictReport>,
    },
    Doctor {
        findings: Vec<Finding>,
    },
    Status {
        pid: u32,
        started_at: i64,
        hosts: usize,
        /// The facts cache's inotify watch budget.
        #[serde(default)]
        watches: crate::model::WatchReport,
    },
    /// The change count now (see [`Request::Changes`]).
    Changed {
        generation: u64,
    },
    Ok,
    /// A refusal or failure: its kind, its one-line message and hints
    /// naming the next command, apart ([`crate::model::error::Failure`]). An
    /// older peer's `{"type":"error","message":…}` reads as kind
    /// `failed` with no hints.
    Error {
        #[serde(default)]
        kind: ErrorKind,
        message: String,
        #[serde(default)]
        hints: Vec<String>,
        /// The causes at the end of `message`, one per line when printed
        /// (issue 19); empty from an older peer.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        causes: Vec<String>,
    },
    /// The answer to [`Request::TaskNew`]: the task's name, how many trials
    /// it asked for, those made (in order), and why the next one was not
    /// made when one failed (the task is dropped when none was made).
    TaskCreated {
        slug: String,
        count: usize,
        trials: Vec<Outcome>,
        failed: Option<String>,
    },
    /// The answer to [`Request::TaskPromote`]: the promoted trial (on its
    /// new branch), the other trials archived (in order), and why the
    /// next one was not archived when one failed.
    TaskPromoted {
        task: String,
        winner: Box<Session>,
        archived: Vec<Outcome>,
        failed: Option<String>,
    },
    /// The answer to [`Request::TaskSetStatus`].
    TaskStatusSet {
        task: String,
        status: crate::model::TaskStatus,
    },
    /// The answer to [`Request::Rename`]: the session as renamed, and
    /// what was kept (a folder the agent runs in, a branch not its own).
    Renamed {
        session: Box<Session>,
        notes: Vec<String>,
    },
}

/// What [`Request::TaskNew`] asks for; the checks are
/// [`crate::tasks::check_new`]'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskNewRequest {
    /// Where the command ran: finds the repository.
    pub cwd: PathBuf,
    /// What the trials should achieve.
    pub objective: String,
    /// The task's name; `None`: from the objective's first words.
    pub name: Option<String>,
    /// How many trials; `None`: one per agent, else 2.
    pub trials: Option<usize>,
    /// The agents, taken in turn by the trials; empty: the default one.
    pub agents: Vec<String>,
    /// `fresh`, `head` or a commit-ish, for every trial.
    pub base: Option<String>,
    /// A shell command run in each trial's worktree to compare them.
    pub check: Option<String>,
    /// Paths the trials own.
    pub owns: Vec<String>,
    /// `--sandbox MODE` for every trial.
    pub sandbox: Option<String>,
    /// The caller's environment, given to the agents (as `CreateRequest::env`).
    pub env: Vec<(String, String)>,
    /// The id of the session whose agent asks (`tandem mcp`): every
    /// trial's creator (as `CreateRequest::creator`).
    #[serde(default)]
    pub creator: Option<String>,
}

/// A session a request made or changed, and what the user should know
/// about it (a fallback, a failed hook).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub session: Session,
    pub notes: Vec<String>,
}

impl From<Failure> for Response {
    fn from(f: Failure) -> Response {
        Response::Error { kind: f.kind, message: f.message, hints: f.hints, causes: f.causes }
    }
}

/// The longest a [`Request::Changes`] waits for a change.
pub const CHANGES_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub use crate::model::RemoveReport;

/// The answer to [`Request::List`] ([`Response::Listed`]): `facts[i]`
/// and `messages[i]` belong to `sessions[i]`. On the wire it is the
/// response object itself (`{"type":"listed","root":…}`), so a client
/// can decode it without the tagged enum's buffering
/// ([`Listed::decode`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    /// The main worktree of the repository the request's `cwd` is in.
    pub root: PathBuf,
    pub sessions: Vec<Session>,
    pub facts: Vec<GitFacts>,
    pub notes: Vec<String>,
    /// Conflict control's latest findings for the live sessions listed,
    /// and whether they are current (else being recomputed).
    #[serde(default)]
    pub conflicts: ConflictReport,
    #[serde(default)]
    pub conflicts_current: bool,
    /// With [`Request::List`]'s `messages`: each session's agent's last
    /// message (an [`crate::store::EventKind::Message`] event), `None`
    /// where it said nothing; empty without.
    #[serde(default)]
    pub messages: Vec<Option<String>>,
}

impl Listed {
    /// The payload of a control frame that answers [`Request::List`],
    /// decoded in one pass: `Ok(None)` when it is another response (an
    /// error), which [`Response`] then decodes. A 200-row answer is
    /// ~300 KB; the internally tagged [`Response`] would first buffer it
    /// all as generic content (issue 23: ~1 ms of a `tandem list`).
    ///
    /// # Errors
    /// `InvalidData` when it says `listed` but does not decode.
    pub fn decode(payload: &[u8]) -> io::Result<Option<Listed>> {
        // serde writes the tag first; anything else goes the long way.
        if !payload.starts_with(br#"{"type":"listed","#) {
            return Ok(None);
        }
        serde_json::from_slice(payload).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// A message from a client to a session host (control frames); keys
/// travel as data frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The first message on a host socket ([`ClientMsg::hello`]).
    Hello {
        /// The oldest host protocol version the client speaks: the one
        /// field a host of protocol 6 reads (it welcomes exactly its own).
        version: u32,
        /// The newest it speaks; absent from a protocol 6 client, which
        /// speaks `version` only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        newest: Option<u32>,
        mode: ClientMode,
    },
    /// The client's terminal size changed, in cells.
    Resize { rows: u16, cols: u16 },
    /// Stop the agent: polite signals, then SIGKILL after `grace_ms`.
    Stop { grace_ms: u64 },
    /// Send this client the whole screen again (e.g. after it drew its own
    /// message over it).
    Redraw,
    /// Ask how many terminals are attached ([`HostMsg::Status`]).
    Status,
    /// A prompt for the agent: typed into its terminal with Enter a
    /// moment later as a separate keystroke (so a TUI takes it as typed,
    /// not pasted), or a user message to a structured agent.
    Prompt { text: String },
    /// Answer the permission request the agent waits on: in a terminal,
    /// Enter (the dialog's first choice, "Yes") or Esc ("No") and then
    /// `message` as a prompt; to a structured agent, its control
    /// response.
    Answer { allow: bool, message: Option<String> },
    /// End the agent's current turn: Esc for Claude Code's TUI, Ctrl-C for
    /// other terminal programs, an interrupt request to a structured
    /// agent.
    Interrupt,
    /// A Claude Code hook event (its JSON payload) for the host to record,
    /// from `tandem hook` inside a sandbox, which cannot write the store
    /// itself; answered by [`HostMsg::Hooked`] once recorded.
    Hook { payload: serde_json::Value },
}

impl ClientMsg {
    /// The hello this build says to a host: every host protocol version
    /// from [`HOST_PROTOCOL_MIN`] to [`HOST_PROTOCOL_VERSION`], in `mode`.
    #[must_use]
    pub fn hello(mode: ClientMode) -> ClientMsg {
        ClientMsg::Hello { version: HOST_PROTOCOL_MIN, newest: Some(HOST_PROTOCOL_VERSION), mode }
    }
}

/// What a client wants from a host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ClientMode {
    /// Full terminal: a redraw of the screen, then output; keys go in.
    Attach { rows: u16, cols: u16 },
    /// The screen and scrollback as text, then (if `follow`) output.
    Logs { follow: bool },
    /// Control messages only (stop).
    Control,
}

/// A message from a host to a client (control frames); output travels as
/// data frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMsg {
    Welcome {
        /// The host protocol version agreed for this connection
        /// ([`agree_host_version`]).
        version: u32,
        session_id: String,
        agent_pid: i32,
    },
    /// `Logs`: the text of scrollback and screen.
    Text {
        text: String,
    },
    /// The answer to [`ClientMsg::Status`].
    Status {
        attached: usize,
    },
    /// The agent is gone; the host exits after this.
    Exited {
        state: SessionState,
        exit_code: Option<i32>,
    },
    Error {
        message: String,
    },
    /// The answer to [`ClientMsg::Hook`]: recorded; `auto_named` when the
    /// session still carries a name tandem picked (its first prompt may
    /// name it).
    Hooked {
        auto_named: bool,
    },
}

// ---------------------------------------------------------------------
// Remote hosts (issue 21): `ssh HOST tandem proxy`.
// ---------------------------------------------------------------------

/// The protocol between a tandem and `tandem proxy` on a remote host,
/// over the stdio of one `ssh` channel ([`RemoteHello`],
/// [`RemoteRequest`], [`RemoteReply`]). Bumped on any change either end
/// would misread; the two ends are different installs, so a proxy whose
/// version differs refuses the hello and the error names `tandem remote
/// install` (no range: one remote, one user, one command to fix it).
pub const REMOTE_PROTOCOL_VERSION: u32 = 1;

/// The first frame on a remote link, each way: the sender's protocol
/// ([`REMOTE_PROTOCOL_VERSION`]) and its tandem version (`0.1.0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteHello {
    pub protocol: u32,
    pub tandem: String,
}

impl RemoteHello {
    /// This build's hello.
    #[must_use]
    pub fn ours() -> RemoteHello {
        RemoteHello { protocol: REMOTE_PROTOCOL_VERSION, tandem: env!("CARGO_PKG_VERSION").to_owned() }
    }
}

/// Where a [`RemoteRequest::Run`] runs its command on the remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum RunAt {
    /// The remote user's home folder.
    Home,
    /// A repository's folder, as a [`RemoteReply::Repo`] named it.
    Repo { path: PathBuf },
    /// The repository of the session named `name` (its slug; among every
    /// repository the remote knows, which must hold exactly one).
    Session { name: String },
}

/// One request on a remote link, after the hellos; one per link.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RemoteRequest {
    /// What `remote doctor` and `remote list` show: [`RemoteReply::Facts`].
    Facts,
    /// Every session the remote knows, as rows: [`RemoteReply::Rows`].
    Rows { archived: bool },
    /// The remote's repository for a local one: the one whose `origin`
    /// has `url`, else a clone of `url`, else a mirror named after
    /// `name` (a folder name) and `key` (16 hex digits of the local
    /// repository's identity) that the caller pushes into.
    Repo { url: Option<String>, name: String, key: String },
    /// `tandem ARGS` run on the remote at `at`: its stdout comes back in
    /// data frames, then [`RemoteReply::Stderr`] and [`RemoteReply::Exit`].
    /// Each of `env_files` reaches the command through a pipe (never a
    /// file): an `--env-file` value `{env-file N}` in `args` becomes that pipe's
    /// `/dev/fd/…` path.
    Run { args: Vec<String>, at: RunAt, env_files: Vec<Vec<u8>> },
    /// Attach to the session `name`'s host at a terminal of `rows` ×
    /// `cols`: after [`RemoteReply::Attached`], the link carries the
    /// host's attach stream both ways, frame for frame ([`ClientMsg`],
    /// [`HostMsg`] and data frames).
    Attach { name: String, rows: u16, cols: u16 },
    /// What to fetch of session `name`: [`RemoteReply::Fetched`].
    Fetch { name: String },
}

/// A proxy's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RemoteReply {
    Facts(RemoteFacts),
    /// Rows made at `now` (Unix seconds), and the notes beside them.
    Rows {
        rows: Vec<crate::model::SessionRow>,
        now: i64,
        notes: Vec<String>,
    },
    /// The repository's folder and how it was found: `found`, `cloned`
    /// or `mirror` (a mirror needs the base commit pushed into it).
    Repo {
        path: PathBuf,
        how: String,
    },
    /// What a [`RemoteRequest::Run`] command wrote on stderr (one chunk).
    Stderr {
        text: String,
    },
    /// The command's exit code (`None`: killed by a signal).
    Exit {
        code: Option<i32>,
    },
    /// The attach stream starts.
    Attached {
        name: String,
    },
    /// Session `name` lives in the repository at `repo`, on `branch`, at
    /// commit `head`; `wip` is a commit of its uncommitted work (tracked
    /// changes and untracked files that are not ignored) stored under
    /// `wip_ref` in that repository, `None` when the worktree is clean.
    Fetched {
        repo: PathBuf,
        branch: String,
        head: String,
        wip: Option<String>,
        wip_ref: Option<String>,
    },
    /// The request failed: the remote tandem's error text, and its hint.
    Error {
        message: String,
        hint: Option<String>,
    },
}

/// A remote host's facts, as its proxy reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFacts {
    /// `tandem --version`'s number.
    pub tandem: String,
    /// `git --version`'s text, or why it failed.
    pub git: String,
    /// `uname -m`'s machine (`x86_64`, `aarch64`).
    pub arch: String,
    /// The load averages of 1, 5 and 15 minutes (`/proc/loadavg`).
    pub load: String,
    /// Sessions it knows that are not archived.
    pub sessions: usize,
    /// Whether its supervisor runs.
    pub supervisor: bool,
    /// How its supervisor outlives a logout: `systemd` (a user service
    /// with lingering on), `systemd-no-linger`, or `setsid` (its own
    /// session, outside the login's).
    pub survives_logout: String,
    /// Bytes free where its state lives.
    pub disk_free: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_oversize() {
        let mut buf = Vec::new();
        write_frame(&mut buf, KIND_DATA, b"\x1b[2Jhi").expect("write");
        send(&mut buf, &ClientMsg::Resize { rows: 24, cols: 80 }).expect("send");
        let mut r = io::Cursor::new(buf);
        assert_eq!(read_frame(&mut r).expect("read"), Some((KIND_DATA, b"\x1b[2Jhi".to_vec())));
        let msg: ClientMsg = recv(&mut r).expect("recv").expect("msg");
        assert!(matches!(msg, ClientMsg::Resize { rows: 24, cols: 80 }));
        assert_eq!(read_frame(&mut r).expect("eof"), None);

        let mut huge = io::Cursor::new(((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec());
        assert_eq!(read_frame(&mut huge).expect_err("too big").kind(), io::ErrorKind::InvalidData);
        // A request is held to the lower cap; a reply of that size is not.
        let mut buf = Vec::new();
        write_frame(&mut buf, KIND_DATA, &vec![b'x'; MAX_REQUEST_LEN]).expect("write");
        let err = read_request_frame(&mut io::Cursor::new(&buf)).expect_err("too big for a request");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(read_frame(&mut io::Cursor::new(&buf)).expect("a reply").map(|f| f.1.len()), Some(MAX_REQUEST_LEN));
    }

    /// Issue 18: an error from a peer that sends no kind or hints (an
    /// older supervisor) still reads, as kind `failed`.
    #[test]
    fn an_old_style_error_still_decodes() {
        let r: Response = serde_json::from_str(r#"{"type":"error","message":"x"}"#).expect("decodes");
        assert!(
            matches!(&r, Response::Error { kind: ErrorKind::Failed, message, hints, .. } if message == "x" && hints.is_empty()),
            "{r:?}"
        );
        let f = Failure::new(ErrorKind::NotFound, "gone").hinted("look elsewhere");
        let json = serde_json::to_string(&Response::from(f)).expect("json");
        assert_eq!(json, r#"{"type":"error","kind":"not_found","message":"gone","hints":["look elsewhere"]}"#);
    }

    #[test]
    fn host_versions_agree_on_the_newest_both_speak() {
        let this = HOST_PROTOCOL_MIN..=HOST_PROTOCOL_VERSION;
        assert_eq!(agree_host_version(this.clone(), this.clone()), Some(HOST_PROTOCOL_VERSION));
        // A client or host of the release before.
        assert_eq!(agree_host_version(6..=6, this.clone()), Some(6));
        assert_eq!(agree_host_version(this.clone(), 6..=6), Some(6));
        // A newer peer whose range still reaches ours.
        assert_eq!(agree_host_version(6..=9, 6..=7), Some(7));
        assert_eq!(agree_host_version(8..=9, 6..=7), None);
        assert_eq!(agree_host_version(4..=5, 6..=7), None);
        // A hello of protocol 6 (no `newest`) reads as that one version,
        // and this build's hello is one a host of protocol 6 takes.
        let old: ClientMsg =
            serde_json::from_str(r#"{"type":"hello","version":6,"mode":{"mode":"control"}}"#).expect("old hello");
        assert!(matches!(old, ClientMsg::Hello { version: 6, newest: None, .. }));
        let ours = serde_json::to_value(ClientMsg::hello(ClientMode::Control)).expect("hello");
        assert_eq!(ours["version"], HOST_PROTOCOL_MIN);
    }

    #[test]
    fn truncated_frames_are_errors_not_panics() {
        for cut in 1..7 {
            let mut buf = Vec::new();
            write_frame(&mut buf, KIND_CONTROL, b"{}").expect("write");
            buf.truncate(cut);
            let result = read_frame(&mut io::Cursor::new(buf));
            assert!(result.is_err() || result.as_ref().is_ok_and(Option::is_none), "cut {cut}: {result:?}");
        }
    }
}
