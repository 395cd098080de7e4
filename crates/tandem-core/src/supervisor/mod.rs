//! The supervisor: the per-user daemon that creates sessions, starts
//! their hosts and stops and removes them.
//!
//! Started on demand by any command that needs it ([`crate::connection::connect`]),
//! it runs detached (its own Unix session), holds an exclusive lock on
//! `run/supervisor.lock` so only one runs per user, and serves
//! `run/supervisor.sock` (0700 directory, peer uid checked). Mutations of
//! one repository are serialized by a per-repository lock.
//!
//! It owns no agent: hosts do. Killing the supervisor, even with
//! `kill -9`, leaves every host and agent running; the next supervisor
//! [reconciles](reconcile) the store with the hosts it finds alive.
//!
//! This file is what the supervisor is: its `State` (store pool,
//! repository locks, caches), [`run`] (start, threads, one per user),
//! [`reconcile`], stopping when the database is lost, and the lookups
//! every request shares (`find`, `repo_of`). Each other file has one
//! job:
//! - `server.rs`: the socket: accept, peer check, hello, answers;
//! - `requests.rs`: [`Request`](crate::protocol::Request) to the one
//!   function that does it (a dispatch table), and the smallest requests;
//! - `create.rs`: `new` (fork, review and trials create through it);
//! - `fork.rs`: fork and review, sessions made from another;
//! - `agents.rs`: stopping and restarting agents (`stop`, `respawn`);
//! - `kept_env.rs`: a session's own environment at `respawn` and `fork`,
//!   its secrets kept in memory only;
//! - `end.rs`: `rm`, `archive`, `restore`, `gc`;
//! - `list.rs`: `list` (its rows, or its text rendered for the client) and
//!   `status`'s counts, with facts, conflict marks and notes;
//! - `naming.rs`: naming a session from its first prompt;
//! - `tasks.rs`, `records.rs`: task requests; records of what commands
//!   did outside the supervisor;
//! - `reaper.rs`: stops idle agents, gets trials' handoffs;
//! - `changes.rs`: counts changes, wakes views waiting for one;
//! - `checkpoints.rs`: checkpoints every session whose agent ended a turn;
//! - `watch.rs`: the git facts cache, kept fresh by inotify;
//! - `conflicts.rs`: conflict reports, cached per repository;
//! - `pulls.rs`: the GitHub pull request watcher;
//! - `companions.rs`: the dashboard and notifier it keeps running
//!   (`[serve]`, `[notify]`);
//! - `client.rs`: reaching the supervisor from a command (public).

mod agents;
mod changes;
mod checkpoints;
pub mod companions;
mod conflicts;
mod create;
mod end;
mod fork;
mod kept_env;
mod list;
mod naming;
mod pool;
mod pulls;
mod reaper;
mod records;
mod requests;
mod server;
mod tasks;
pub mod watch;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::config::Config;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::session::{self, SessionError};
use crate::store::{Session, SessionState, Store};

/// Errors that keep the supervisor from starting.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("a supervisor is already running (pid {pid}); stop it with `tandem daemon stop`")]
    AlreadyRunning { pid: String },
    #[error(transparent)]
    Paths(#[from] crate::paths::PathsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

struct State {
    paths: Paths,
    /// The `tandem` binary, run as `tandem host` for each session.
    exe: PathBuf,
    started_at: i64,
    repo_locks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
    facts: watch::FactsCache,
    /// `Repository::discover` answers by folder, re-checked cheaply.
    repos: Mutex<HashMap<PathBuf, Repository>>,
    /// The held `supervisor.lock` (one supervisor per user), released
    /// on shutdown.
    lock: Mutex<Option<File>>,
    /// Open store connections not in use (opening one costs about as
    /// much as a whole cached `list`).
    stores: Mutex<Vec<Store>>,
    /// Counts changes anything a session shows (see
    /// [`Request::Changes`](crate::protocol::Request::Changes)); waiters
    /// wait on the condvar.
    changes: (Mutex<u64>, Condvar),
    /// What the pull request watcher needs from commands
    /// ([`Request::WatchPull`](crate::protocol::Request::WatchPull)).
    pulls: pulls::Shared,
    /// Conflict control's caches
    /// ([`Request::Conflicts`](crate::protocol::Request::Conflicts)).
    conflicts: conflicts::Shared,
    /// The database file's identity when this supervisor opened it; once
    /// the file there is another (or none), it stops ([`database_lost`]).
    database: Option<crate::store::FileIdentity>,
    /// Set once the database is found lost: the supervisor is stopping.
    lost: std::sync::atomic::AtomicBool,
    /// Each session's secrets (caller's secret variables, env files'
    /// values), in memory only, for its respawns ([`kept_env`]).
    kept: Mutex<HashMap<String, kept_env::Kept>>,
    /// The worktree pools' refill threads ([`pool`]).
    pool: pool::Shared,
    /// Each repository's config as last loaded, with the identity of the
    /// two files it came from ([`State::config`]).
    configs: Mutex<HashMap<PathBuf, (ConfigStamp, Config)>>,
    /// The sessions that are running, exited or stopped, as last read,
    /// with the change count then ([`State::live_sessions`]).
    live: Mutex<Option<(u64, Arc<Vec<Session>>)>>,
    /// Store reads `list` and `status` answer from, kept until anyone
    /// commits to the store ([`State::kept`], [`Reads`]).
    reads: Mutex<Reads>,
}

/// A repository the store knows: its id, common dir and main worktree
/// ([`Store::repos`]).
type KnownRepo = (i64, PathBuf, PathBuf);

/// Store reads kept while the store's `PRAGMA data_version`, read on a
/// connection of their own, stays the same. SQLite changes that value
/// on a connection whenever any other connection has committed (this
/// process's pooled ones, hosts, hooks, commands:
/// <https://sqlite.org/pragma.html#pragma_data_version>), and reads it
/// from the WAL index, so the check is current to the commit: unlike
/// [`State::live_sessions`]' change count, which [`changes`] moves up to
/// 100 ms later, a kept read is never older than the last commit
/// (issue 23: 200 sessions read for every `list` were a fifth of its
/// cost in the supervisor).
#[derive(Default)]
struct Reads {
    /// The connection that reads only the version; `None` until opened.
    observer: Option<Store>,
    /// The version the reads below were made at.
    version: Option<i64>,
    repos: Option<Arc<Vec<KnownRepo>>>,
    /// Each repository's sessions (archived ones too), by repository id.
    sessions: HashMap<i64, Arc<Vec<Session>>>,
    /// The sessions `tandem status` counts ([`crate::rows::TALLIED`]).
    tallied: Option<Arc<Vec<Session>>>,
    /// Each session's agent's last message, by session id.
    messages: HashMap<String, Option<String>>,
}

/// What a loaded config depends on that can change while the supervisor
/// runs: the user's `config.toml` and the repository's `.tandem.toml`,
/// each by inode, size and mtime (ns); `None` for a missing file. (The
/// `TANDEM_*` variables are the supervisor's own, fixed for its life.)
type ConfigStamp = [Option<(u64, u64, i64, i64)>; 2];

fn stamp_of(path: &std::path::Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

/// A store connection lent by [`State::store`]; it goes back to the pool
/// when dropped.
struct PooledStore<'a> {
    state: &'a State,
    store: Option<Store>,
}

impl std::ops::Deref for PooledStore<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store.as_ref().expect("present until dropped")
    }
}

impl Drop for PooledStore<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            self.state.stores.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(store);
        }
    }
}

impl State {
    /// A store connection: a pooled one, or a new one when all are busy.
    /// Refused with [`crate::store::StoreError::Replaced`] once the
    /// database file is not the one this supervisor opened.
    fn store(&self) -> Result<PooledStore<'_>, crate::store::StoreError> {
        self.database_here()?;
        let pooled = self.stores.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let store = match pooled {
            Some(store) => store,
            None => Store::open(&self.paths.database())?,
        };
        Ok(PooledStore { state: self, store: Some(store) })
    }

    /// The database as this supervisor opened it, else
    /// [`crate::store::StoreError::Replaced`] (and the supervisor stops).
    fn database_here(&self) -> Result<(), crate::store::StoreError> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst)
            || crate::store::file_identity(&self.paths.database()) != self.database
        {
            database_lost(self);
            return Err(crate::store::StoreError::Replaced { path: self.paths.database() });
        }
        Ok(())
    }

    /// The repositories the store knows, as [`Store::repos`] reads them,
    /// kept until the next commit ([`Reads`]).
    ///
    /// # Errors
    /// Store errors.
    fn kept_repos(&self) -> Result<Arc<Vec<KnownRepo>>, crate::store::StoreError> {
        self.kept(|k| k.repos.clone(), |store| Ok(Arc::new(store.repos()?)), |k, v| k.repos = Some(v))
    }

    /// The sessions of the repository `repo_id`, archived ones too, as
    /// [`Store::sessions`] reads them, kept until the next commit.
    ///
    /// # Errors
    /// Store errors.
    fn kept_sessions(&self, repo_id: i64) -> Result<Arc<Vec<Session>>, crate::store::StoreError> {
        self.kept(
            |k| k.sessions.get(&repo_id).cloned(),
            |store| Ok(Arc::new(store.sessions(repo_id)?)),
            |k, v| {
                k.sessions.insert(repo_id, v);
            },
        )
    }

    /// The sessions `tandem status` counts in every repository, kept
    /// until the next commit.
    ///
    /// # Errors
    /// Store errors.
    fn kept_tallied(&self) -> Result<Arc<Vec<Session>>, crate::store::StoreError> {
        self.kept(
            |k| k.tallied.clone(),
            |store| Ok(Arc::new(store.sessions_in(&crate::rows::TALLIED)?)),
            |k, v| k.tallied = Some(v),
        )
    }

    /// The last message of each of `ids`' agents (a
    /// [`crate::store::EventKind::Message`] event; `None` for one that said
    /// nothing or cannot be read), kept until the next commit.
    ///
    /// # Errors
    /// Store errors.
    fn kept_messages(&self, ids: &[&str]) -> Result<Vec<Option<String>>, crate::store::StoreError> {
        self.kept(
            |k| ids.iter().map(|id| k.messages.get(*id).cloned()).collect(),
            |store| {
                Ok(ids.iter().map(|id| store.last_text(id, crate::store::EventKind::Message).ok().flatten()).collect())
            },
            |k, v| {
                for (id, message) in ids.iter().zip(v) {
                    k.messages.insert((*id).to_owned(), message);
                }
            },
        )
    }

    /// What `get` finds kept at the store's version now, else what `read`
    /// reads on a pooled connection, kept with `put` unless another look
    /// has seen a newer version meanwhile. The version is read before the
    /// read, so a value kept is never older than its version; one newer
    /// (a commit came between) is dropped at the next look.
    fn kept<T: Clone>(
        &self,
        get: impl Fn(&Reads) -> Option<T>,
        read: impl FnOnce(&Store) -> Result<T, crate::store::StoreError>,
        put: impl FnOnce(&mut Reads, T),
    ) -> Result<T, crate::store::StoreError> {
        self.database_here()?;
        // Opened without the lock held (a busy database makes an open
        // wait): the other readers keep going meanwhile.
        let unopened = self.reads.lock().unwrap_or_else(std::sync::PoisonError::into_inner).observer.is_none();
        let opened = if unopened { Store::open(&self.paths.database()).ok() } else { None };
        let version = {
            let mut kept = self.reads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.observer.is_none() {
                kept.observer = opened;
            }
            let version = kept.observer.as_ref().and_then(|o| o.data_version().ok());
            if version.is_none() || version != kept.version {
                let observer = kept.observer.take();
                *kept = Reads { observer, version, ..Reads::default() };
            }
            if let Some(found) = get(&kept) {
                return Ok(found);
            }
            version
        };
        let value = read(&*self.store()?)?;
        let mut kept = self.reads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if version.is_some() && kept.version == version {
            put(&mut kept, value.clone());
        }
        Ok(value)
    }

    /// The repository `dir` is in: remembered, as long as the answer still
    /// holds (its worktree still has its `.git`, and no folder between
    /// `dir` and it has gained one), else `git rev-parse` again.
    fn discover(&self, dir: &std::path::Path) -> Result<Repository, crate::repo::RepoError> {
        let still = |repo: &Repository| {
            repo.worktree.join(".git").exists()
                && repo.common_dir.is_dir()
                && dir.starts_with(&repo.worktree)
                && dir.ancestors().take_while(|d| *d != repo.worktree).all(|d| !d.join(".git").exists())
        };
        let mut known = self.repos.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(repo) = known.get(dir)
            && still(repo)
        {
            return Ok(repo.clone());
        }
        let repo = Repository::discover(dir)?;
        known.insert(dir.to_path_buf(), repo.clone());
        Ok(repo)
    }

    /// The config of `repo` (the user's file and the repository's
    /// `.tandem.toml`), parsed again only when either file changed: the
    /// background threads ask for it about every session every second,
    /// and a TOML parse each time cost the idle supervisor 4 % of a core
    /// at 200 sessions (issue 23).
    ///
    /// # Errors
    /// As [`Config::load`].
    fn config(&self, repo: &Repository) -> Result<Config, crate::config::ConfigError> {
        let user = self.paths.config_dir.join("config.toml");
        let local = repo.root.join(".tandem.toml");
        let stamp = [stamp_of(&user), stamp_of(&local)];
        if let Some((seen, config)) =
            self.configs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&repo.root)
            && *seen == stamp
        {
            return Ok(config.clone());
        }
        let config = Config::load(&user, Some(&local))?;
        self.configs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(repo.root.clone(), (stamp, config.clone()));
        Ok(config)
    }

    /// The sessions that are running, exited or stopped, read from the
    /// store again only when the change count moved (a store commit by
    /// anyone: [`changes::watch_changes`] sees it within 100 ms). The
    /// reaper, the pull request watcher and the checkpointer each looked
    /// every second or half: 200 rows read three times a second cost the
    /// idle supervisor more than all else at 200 sessions (issue 23).
    ///
    /// # Errors
    /// Store errors.
    fn live_sessions(&self) -> Result<Arc<Vec<Session>>, crate::store::StoreError> {
        let count = *self.changes.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, sessions)) = &*self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
            && *seen == count
        {
            return Ok(Arc::clone(sessions));
        }
        let sessions = Arc::new(self.store()?.sessions_in(&[
            SessionState::Running,
            SessionState::Exited,
            SessionState::Stopped,
        ])?);
        *self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((count, Arc::clone(&sessions)));
        Ok(sessions)
    }

    fn repo_lock(&self, common_dir: &std::path::Path) -> Arc<Mutex<()>> {
        let mut locks = self.repo_locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(common_dir.to_path_buf()).or_default())
    }
}

/// Runs the supervisor in this process until `shutdown`. `exe` is the
/// `tandem` binary used to start hosts.
///
/// # Errors
/// [`SupervisorError::AlreadyRunning`], or setup failures.
pub fn run(paths: &Paths, exe: PathBuf) -> Result<(), SupervisorError> {
    // Its own session and process group (already so when it leads one):
    // the git commands it runs are in that group, which the next
    // supervisor ends if this one is killed ([`end_orphans`]).
    let _ = nix::unistd::setsid();
    // A thread per host connection: without a limit glibc gives them up
    // to eight arenas per core, each keeping its own freed memory.
    crate::process::limit_malloc_arenas(2);
    paths.ensure_runtime_dir()?;
    paths.ensure_state_dir()?;
    let lock_path = paths.supervisor_lock();
    let mut lock =
        OpenOptions::new().create(true).truncate(false).read(true).write(true).mode(0o600).open(&lock_path)?;
    if lock.try_lock().is_err() {
        let pid = std::fs::read_to_string(&lock_path).unwrap_or_default().trim().to_owned();
        return Err(SupervisorError::AlreadyRunning { pid });
    }
    lock.set_len(0)?;
    write!(lock, "{}", std::process::id())?;
    end_orphans(paths);
    let listener = crate::socket::bind(&paths.supervisor_socket())?;
    // Made if missing, so its identity is the file served from.
    drop(Store::open(&paths.database())?);
    let state = Arc::new(State {
        paths: paths.clone(),
        exe,
        started_at: crate::unix_now(),
        repo_locks: Mutex::new(HashMap::new()),
        facts: watch::FactsCache::with_cap(watch::watch_cap(companions::user_config(paths).watch.max_watches)),
        repos: Mutex::new(HashMap::new()),
        stores: Mutex::new(Vec::new()),
        lock: Mutex::new(Some(lock)),
        changes: (Mutex::new(0), Condvar::new()),
        pulls: pulls::Shared::default(),
        conflicts: conflicts::Shared::default(),
        database: crate::store::file_identity(&paths.database()),
        lost: std::sync::atomic::AtomicBool::new(false),
        kept: Mutex::new(HashMap::new()),
        pool: pool::Shared::default(),
        configs: Mutex::new(HashMap::new()),
        live: Mutex::new(None),
        reads: Mutex::new(Reads::default()),
    });
    reconcile(paths)?;
    let reaper = Arc::clone(&state);
    thread::Builder::new().name("reaper".into()).spawn(move || reaper::run(&reaper))?;
    let watcher = Arc::clone(&state);
    thread::Builder::new().name("changes".into()).spawn(move || changes::watch_changes(&watcher))?;
    let pulls = Arc::clone(&state);
    thread::Builder::new().name("pulls".into()).spawn(move || pulls::watch(&pulls))?;
    let checkpointer = Arc::clone(&state);
    thread::Builder::new().name("checkpoints".into()).spawn(move || checkpoints::run(&checkpointer))?;
    pool::start(&state);
    companions::start(paths, &state.exe);
    tracing::info!(pid = std::process::id(), "supervisor listening");
    server::accept(&state, &listener);
    Ok(())
}

/// The file naming the running supervisor's process group and when its
/// leader started: `<pid> <start ticks>` ([`end_orphans`]).
fn group_file(paths: &Paths) -> PathBuf {
    paths.supervisor_lock().with_file_name("supervisor.group")
}

/// How long [`end_orphans`] waits for the last supervisor's children to
/// end after `SIGKILL`.
const ORPHANS_WAIT: Duration = Duration::from_secs(5);

/// How long [`end_orphans`] lets them end after `SIGTERM` (git cleans
/// its lock files up) before it sends `SIGKILL`.
const ORPHANS_GRACE: Duration = Duration::from_secs(2);

/// Ends what a killed supervisor left running, before anything is
/// reconciled (issue 17, finding 5): its git commands (a `git worktree
/// add` and the `git reset --hard` it runs as a child go on checking out
/// files after a `kill -9` of the supervisor, and would write into, or
/// unlock, a worktree the next supervisor has undone or made again), and
/// the hooks and filters they run. They are all in its process group (it
/// leads one, see [`run`]; hosts leave it at once), so one `SIGTERM` to
/// the group ends them (`SIGKILL` after [`ORPHANS_GRACE`]); then it waits
/// until none runs, and removes the lock files they held that are still
/// there (a git cut short leaves them, and every later git refuses to
/// run on them). Then records this
/// supervisor's own group for the next one. The group is the last
/// supervisor's only when its leader's pid was not taken since by another
/// process (its start time tells): the kernel gives no process a pid that
/// is still a live group's id, so while any orphan runs the group is
/// ours.
fn end_orphans(paths: &Paths) {
    let file = group_file(paths);
    let last = std::fs::read_to_string(&file).ok().and_then(|text| {
        let mut words = text.split_whitespace();
        Some((words.next()?.parse::<i32>().ok()?, words.next()?.parse::<u64>().ok()?))
    });
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    if let Some((pgid, started)) = last
        && pgid != me
        && crate::process::start_time(pgid).is_none_or(|now| now == started)
        && !crate::process::running_members(pgid).is_empty()
    {
        tracing::warn!(pgid, "ending the commands the last supervisor left running");
        // `SIGTERM` first: git removes the lock files it holds when it
        // gets one (its tempfile handlers), where a `SIGKILL` leaves them
        // behind (`packed-refs.lock`, `index.lock`) and every later git in
        // the repository refuses to run ("Another git process seems to be
        // running"). What is still running after the grace is killed.
        let ended = |wait: Duration| {
            let deadline = std::time::Instant::now() + wait;
            while !crate::process::running_members(pgid).is_empty() {
                if std::time::Instant::now() >= deadline {
                    return false;
                }
                thread::sleep(Duration::from_millis(10));
            }
            true
        };
        let git_dirs: Vec<PathBuf> = Store::open(&paths.database())
            .and_then(|store| store.repos())
            .map(|repos| repos.into_iter().map(|(_, d, _)| d.canonicalize().unwrap_or(d)).collect())
            .unwrap_or_default();
        let held = held_locks(&crate::process::running_members(pgid), &git_dirs);
        crate::process::signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
        let all_ended = ended(ORPHANS_GRACE) || {
            crate::process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            ended(ORPHANS_WAIT)
        };
        // A git lock file they held that is still there (the same file:
        // device, inode and change time of what they had open) was left by
        // a process that is gone, whatever cut it short: git would refuse
        // every later command on it.
        for (path, id) in held.into_iter().filter(|_| all_ended) {
            if std::fs::symlink_metadata(&path).ok().as_ref().map(file_id) == Some(id)
                && std::fs::remove_file(&path).is_ok()
            {
                tracing::warn!(path = %path.display(), "removed a lock file a killed git left");
            }
        }
    }
    if let Some(started) = crate::process::start_time(me) {
        let _ = std::fs::write(&file, format!("{me} {started}\n"));
    }
}

/// The git lock files the processes `pids` have open for writing (as
/// git makes them: `O_RDWR|O_CREAT|O_EXCL`): a name ending in `.lock`
/// under one of `git_dirs` (the repositories' common dirs, where refs,
/// `packed-refs`, and each worktree's `index` and `HEAD` are locked),
/// each with the identity of the open file ([`file_id`], read through
/// `/proc/PID/fd/N`, so a file made at the same path since is not it).
/// A `Cargo.lock` a filter reads, or anything outside a git dir, is not.
fn held_locks(pids: &[i32], git_dirs: &[PathBuf]) -> Vec<(PathBuf, FileId)> {
    let mut held = Vec::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(path) = std::fs::read_link(fd.path()) else { continue };
            let in_git_dir = git_dirs.iter().any(|d| path.starts_with(d));
            if !in_git_dir || path.extension().is_none_or(|e| e != "lock") || held.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let fdinfo = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()));
            let flags = fdinfo.ok().and_then(|t| {
                t.lines().find_map(|l| l.strip_prefix("flags:")).and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            });
            let writes = flags.is_some_and(|f| f & 0o3 != 0);
            if let (true, Ok(meta)) = (writes, std::fs::metadata(fd.path()))
                && meta.is_file()
            {
                held.push((path, file_id(&meta)));
            }
        }
    }
    held
}

/// A file's device, inode and change time (s, ns): an inode number freed
/// and given again to a new file has another change time.
type FileId = (u64, u64, i64, i64);

fn file_id(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
}

/// Tries the interrupted creations `ids` that [`reconcile`] left waiting
/// (a killed process's git still at work on them) again, every quarter
/// second for up to two minutes, from a thread of its own. They were
/// interrupted before this supervisor started, so none is one it makes.
fn settle_later(paths: Paths, mut ids: Vec<String>) {
    let spawned = thread::Builder::new().name("settle".into()).spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !ids.is_empty() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(250));
            let Ok(store) = Store::open(&paths.database()) else { continue };
            match session::repair::settle_creations(&paths, &store, &ids) {
                Ok(done) => {
                    done.actions.iter().for_each(|a| tracing::warn!("{a}"));
                    ids = done.waiting;
                }
                Err(e) => tracing::warn!(error = %e, "cannot settle the interrupted creations"),
            }
        }
        if !ids.is_empty() {
            tracing::warn!(
                ?ids,
                "interrupted creations left as they are; the next start of the supervisor settles them"
            );
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the thread that settles interrupted creations");
    }
}

/// Brings the store in line with the hosts alive now and finishes or
/// undoes what a killed supervisor left half done
/// ([`session::repair::reconcile`]); empties the trash in the background.
///
/// # Errors
/// Store errors.
pub fn reconcile(paths: &Paths) -> Result<(), SupervisorError> {
    let store = Store::open(&paths.database())?;
    match session::repair::reconcile(paths, &store) {
        Ok(done) => {
            done.actions.iter().for_each(|a| tracing::warn!("{a}"));
            if !done.waiting.is_empty() {
                settle_later(paths.clone(), done.waiting);
            }
        }
        Err(e) => tracing::warn!(error = %e, "reconcile failed"),
    }
    // Temporary indexes of snapshots and checkpoints a killed process
    // left (issue 22).
    let swept = crate::git::sweep_scratch(&paths.state_dir);
    if swept > 0 {
        tracing::warn!(swept, "removed the temporary indexes of killed snapshots");
    }
    let mut trash = Vec::new();
    for (repo_id, _, root) in store.repos()? {
        if let Ok((repo, config)) = session::open_repo(paths, &root) {
            match crate::checkpoints::mend_refs(&repo, &store, repo_id, Duration::ZERO) {
                Ok(mended) => mended.iter().for_each(|m| tracing::warn!("checkpoints: {m}")),
                Err(e) => tracing::warn!(error = %crate::error_chain(&e), "cannot check the checkpoint refs"),
            }
            trash.push(session::end::trash_dir(&session::worktrees_dir(paths, &repo, &config)));
        }
    }
    thread::spawn(move || {
        crate::process::lower_thread_priority();
        for dir in trash {
            std::fs::read_dir(&dir).into_iter().flatten().flatten().for_each(|e| session::end::delete_tree(&e.path()));
        }
    });
    Ok(())
}

/// Marks the database lost (deleted, or replaced by another file, while
/// this supervisor ran; issue 17, finding 7): every request from now on
/// is refused with [`crate::store::StoreError::Replaced`], and the
/// supervisor stops ([`stop_on_lost_database`]) rather than serve sessions
/// from a file nobody else sees.
fn database_lost(state: &State) {
    if !state.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
        tracing::error!(
            path = %state.paths.database().display(),
            "the database was deleted or replaced; stopping, so that the next command starts a supervisor on the file there now"
        );
    }
}

/// Stops the supervisor once the mutations under way are done (it takes
/// every repository's lock first): frees the socket and the lock, and
/// exits. The next command starts a supervisor on the database file now
/// there; `tandem doctor --fix` adopts the worktrees it does not know.
fn stop_on_lost_database(state: &State) -> ! {
    // In one order (by repository), so two threads stopping at once
    // cannot hold one lock each and wait for the other's.
    let mut locks: Vec<(PathBuf, Arc<Mutex<()>>)> = state
        .repo_locks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(k, v)| (k.clone(), Arc::clone(v)))
        .collect();
    locks.sort_by(|a, b| a.0.cmp(&b.0));
    let _guards: Vec<_> =
        locks.iter().map(|(_, l)| l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).collect();
    let _ = std::fs::remove_file(state.paths.supervisor_socket());
    if let Some(lock) = state.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        let _ = lock.unlock();
    }
    tracing::warn!("supervisor stopped: its database was deleted or replaced");
    std::process::exit(0);
}

fn find(store: &Store, session_id: &str) -> Result<Session, SessionError> {
    store.session(session_id)?.ok_or_else(|| SessionError::NotFound { name: session_id.to_owned() })
}

/// [`find`], refusing a session that is archived or whose worktree is
/// gone: one an agent can work in.
fn find_with_worktree(store: &Store, session_id: &str) -> Result<Session, SessionError> {
    let session = find(store, session_id)?;
    if session.state == SessionState::Archived {
        return Err(SessionError::Archived { slug: session.slug });
    }
    if !session.path.is_dir() {
        return Err(SessionError::WorktreeMissing { slug: session.slug, path: session.path });
    }
    Ok(session)
}

/// The session's repository, found from its main worktree as recorded
/// (the session's own worktree may be gone), and its config.
fn repo_of(state: &State, store: &Store, session: &Session) -> Result<(Repository, Config), SessionError> {
    let root = store.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
    let repo = state.discover(&root)?;
    let config = state.config(&repo)?;
    Ok((repo, config))
}
