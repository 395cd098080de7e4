//! The SQLite store: one database file (WAL) for every repository and
//! session of this user.
//!
//! The supervisor, hosts and CLI commands open it concurrently: WAL lets
//! readers run beside the one writer, `busy_timeout` makes writers wait
//! for each other instead of failing, and every write is a single
//! statement or an immediate transaction. Schema changes are numbered
//! migrations tracked in `PRAGMA user_version`, applied on open.
//!
//! By job: this file opens the database and holds what every write
//! shares (errors, secrets to mask, transactions); [`schema`] the
//! migrations, [`sessions`] session rows, [`repos`] repository rows,
//! [`approvals`] approved hook texts, [`checkpoints`] checkpoints and turn counts, [`aliases`] a renamed session's old names, [`events`] history and search,
//! [`tasks`] tasks and check results, [`envs`] the environment a session
//! was made with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cause and what to do are in the text, so a one-line error
    /// ends with the fix (issue 17).
    #[error("{}", describe(Some(path), error))]
    Open { path: PathBuf, error: rusqlite::Error },
    /// A live session of this repository already has this slug.
    #[error("a session named `{slug}` already exists")]
    SlugTaken { slug: String },
    #[error("every block of ports up to 65535 is held by a live session; stop some, or lower `ports.block`")]
    NoPorts,
    /// The database file was deleted or replaced under a running
    /// supervisor ([`Store::replaced`]).
    #[error(
        "the database {} was deleted or replaced while the supervisor ran, so the supervisor stopped; run the command again, and `tandem doctor --fix` to adopt the worktrees of sessions the database no longer has", path.display()
    )]
    Replaced { path: PathBuf },
    /// The database file is gone; a session's host records nothing
    /// rather than make a new, empty one.
    #[error("the database {} is gone; run `tandem doctor --fix` to adopt the worktrees of sessions it held", path.display())]
    Gone { path: PathBuf },
    /// Any other SQLite failure: read-only, disk full, damaged, … each
    /// named with its fix ([`describe`]).
    #[error("{}", describe(None, .0))]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(error)
    }
}

/// The database this process opened last ([`Store::open`]), named in
/// [`StoreError::Sqlite`]'s text: a failed statement does not know its
/// file, and each process opens one database.
static DATABASE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// One line for a SQLite failure on the database at `path` (else the one
/// this process opened): what went wrong and the command that mends it
/// (issue 17: a read-only or full disk said only "database error", a
/// damaged file "it did not listen in time").
#[must_use]
pub fn describe(path: Option<&Path>, error: &rusqlite::Error) -> String {
    let path = path
        .map(Path::to_path_buf)
        .or_else(|| DATABASE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone());
    let file = path.as_deref().map_or_else(|| "tandem.db".to_owned(), |p| p.display().to_string());
    use rusqlite::ErrorCode as C;
    match error.sqlite_error_code() {
        Some(C::ReadOnly) => format!(
            "cannot write tandem's database {file}: it is read-only ({error}); make it and its folder writable again (`chmod u+w`, `chattr -i`), then run the command again"
        ),
        Some(C::DiskFull) => format!(
            "cannot write tandem's database {file}: the disk is full ({error}); free some space, then run the command again"
        ),
        Some(C::SystemIoFailure) => format!(
            "cannot write tandem's database {file} ({error}): its disk is full, read-only or failing, or a file is not writable; free some space or make them writable (`chmod u+w`, `chattr -i`), then run the command again"
        ),
        Some(C::NotADatabase | C::DatabaseCorrupt) => format!(
            "tandem's database {file} is damaged ({error}); restore it from a backup, or move it aside (`mv {file} {file}.damaged`) and tandem starts an empty one"
        ),
        Some(C::CannotOpen | C::PermissionDenied) => format!(
            "cannot open tandem's database {file} ({error}); check that it and its folder are yours and writable, then run the command again"
        ),
        _ => format!("database error on {file}: {error}"),
    }
}

mod aliases;
mod approvals;
mod checkpoints;
mod envs;
mod events;
mod repos;
mod schema;
mod sessions;
mod tasks;
pub use aliases::Renaming;
pub use checkpoints::TurnsPending;
pub use events::{Event, EventKind, Hit, NewEvent};
pub use sessions::MetaUpdate;
use sessions::{COLUMNS, row_to_session};
// The rows the store reads and writes are plain data that also cross
// the wire: they live in [`crate::model`] and keep their names here.
pub use crate::model::{Activity, CheckResult, Meta, Priority, Session, SessionState, Task, TaskStatus};

/// Creates the database file at `path` with mode 0600 if it is missing,
/// and takes group and other access from it and its `-wal` and `-shm`
/// files when an older tandem left them open.
fn private_database(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // A missing folder and the like: SQLite reports it.
        Err(_) => return Ok(()),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        crate::paths::tighten(Path::new(&file), 0o600)?;
    }
    Ok(())
}

/// A connection to the database.
pub struct Store {
    conn: Connection,
    /// Secret values masked in every event this connection writes
    /// ([`Store::redact_secrets`]).
    secrets: Vec<String>,
    /// The database file, and its identity when opened ([`Store::replaced`]).
    path: PathBuf,
    identity: Option<FileIdentity>,
}

/// A file's identity: device and inode numbers. A file deleted and made
/// again at the same path, or another moved there, has another.
pub type FileIdentity = (u64, u64);

/// The identity of the file at `path` (symlinks followed), or `None`
/// when there is none.
#[must_use]
pub fn file_identity(path: &Path) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether SQLite answered "database is busy" or "is locked".
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be opened or migrated.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        *DATABASE.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(path.to_path_buf());
        // Made 0600 before SQLite opens it: SQLite gives the WAL and
        // shared-memory files the database's own mode (issue 16).
        private_database(path).map_err(|error| StoreError::Open {
            path: path.to_path_buf(),
            error: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(error.to_string()),
            ),
        })?;
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            // The query planner's stability guarantee: a cached statement
            // keeps its plan whatever is bound to it. Without it, the
            // bundled SQLite (built with STAT4) marks statements whose
            // parameters meet an index to be prepared again whenever a new
            // value is bound: 200 last messages read for a `list --json`
            // spent most of their time re-preparing one statement (issue
            // 23). Our queries have one good plan (their indexes).
            conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            schema::migrate(&conn)?;
            Ok(conn)
        };
        // Switching a new database to WAL, and WAL recovery, can answer
        // "database is locked" at once, without waiting for the busy
        // timeout, when several processes open it together (eight `tandem
        // new` at once): try again for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(5);
        loop {
            match open() {
                Ok(conn) => {
                    // The file SQLite opened (it made it, if missing).
                    let identity = file_identity(path);
                    // The secrets of this process's own environment (a
                    // well-known name, or declared for its agent) are
                    // masked in whatever it stores.
                    let secrets = crate::secrets::secret_values(&crate::secrets::process_env().0);
                    return Ok(Store { conn, secrets, path: path.to_path_buf(), identity });
                }
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(error) => return Err(StoreError::Open { path: path.to_path_buf(), error }),
            }
        }
    }

    /// Whether the database file this connection opened is no longer at
    /// its path: deleted, or replaced by another file (issue 17, finding
    /// 7). Such a connection still reads and writes the old file, which
    /// nobody else sees: stop using it. One `stat`.
    #[must_use]
    pub fn replaced(&self) -> bool {
        file_identity(&self.path) != self.identity
    }

    /// When [`Store::replaced`] and a database file is at the path again
    /// (a new supervisor made it), connects to that one instead, keeping
    /// the secrets to mask. Returns whether it did.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn reopen_if_replaced(&mut self) -> Result<bool, StoreError> {
        if !self.replaced() || file_identity(&self.path).is_none() {
            return Ok(false);
        }
        let mut fresh = Store::open(&self.path)?;
        fresh.secrets = std::mem::take(&mut self.secrets);
        *self = fresh;
        Ok(true)
    }

    /// The database file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's `data_version`: changes whenever another connection
    /// commits (<https://sqlite.org/pragma.html#pragma_data_version>).
    /// Only meaningful compared on the same connection.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Whether the database can take a write now: rewrites its
    /// `user_version` with the value it has, in one transaction (a page
    /// into the WAL; nothing a reader sees changes). Asked before a step
    /// that cannot be undone (stopping an agent), so a read-only file or a
    /// full disk fails first (issue 17: a failed `rm` still stopped the
    /// agent). Taking the write lock alone proves nothing: in WAL mode
    /// that touches only the shared memory.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] (read-only, disk full, I/O error, locked past
    /// the busy timeout).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let write = || -> rusqlite::Result<()> {
            let tx = rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()
        };
        // "database is locked" can come at once, past the busy handler,
        // while another process recovers the WAL (as in [`Store::open`]);
        // CI saw `send` fail so. A busy store is not a broken one: try
        // again for as long as the busy timeout.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(5);
        loop {
            match write() {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                done => return Ok(done?),
            }
        }
    }

    /// Masks these secret values (see [`crate::secrets::redact`]) in
    /// the text and data of every event, title and summary this
    /// connection writes from now on, beside those of the process's own
    /// environment and of the session's running agent.
    pub fn redact_secrets(&mut self, secrets: Vec<String>) {
        self.secrets.extend(secrets);
        self.secrets.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.secrets.dedup();
    }

    /// The secret values to mask in what is stored for session `id`:
    /// this connection's ([`Store::redact_secrets`]), those in the
    /// environment of the session's running agent (its declared secrets,
    /// env-file values and well-known names), and the values of its
    /// `--env-file` files (read again, so a stopped session's too),
    /// longest first.
    pub(crate) fn secrets_for(&self, id: &str) -> Vec<String> {
        let mut secrets = self.secrets.clone();
        if let Ok(Some(session)) = self.session(id) {
            if let Some(pid) = session.agent_pid.filter(|p| *p > 0) {
                secrets.extend(crate::secrets::process_secrets(pid));
            }
            for file in &session.env_files {
                let pairs = crate::secrets::read_env_file(file).unwrap_or_default();
                secrets.extend(pairs.into_iter().map(|(_, v)| v).filter(|v| v.len() >= crate::secrets::MIN_SECRET_LEN));
            }
            secrets.sort_by_key(|v| std::cmp::Reverse(v.len()));
            secrets.dedup();
        }
        secrets
    }

    /// `text` as it may be stored for session `id` (secrets masked).
    /// A transaction that takes the write lock when it begins (`BEGIN
    /// IMMEDIATE`), waiting for another writer up to the busy timeout.
    /// A deferred one that read first could not wait: SQLite refuses its
    /// upgrade to a writer at once with `SQLITE_BUSY` ("database is
    /// locked") when another connection wrote since its read began, as
    /// the WAL documentation's "busy" section says. Nothing may be read
    /// from the store inside it before the first write: read first.
    ///
    /// # Errors
    /// `SQLITE_BUSY` after the busy timeout.
    pub(crate) fn write_transaction(&self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)
    }

    fn masked(&self, id: &str, text: &str) -> String {
        crate::secrets::redact(text, &self.secrets_for(id)).into_owned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(id: &str, repo_id: i64, slug: &str) -> Session {
        Session {
            id: id.to_owned(),
            repo_id,
            slug: slug.to_owned(),
            branch: slug.to_owned(),
            agent: "shell".to_owned(),
            command: vec!["/bin/sh".to_owned()],
            path: PathBuf::from("/wt").join(slug),
            base_ref: "main".to_owned(),
            base_commit: "abc".to_owned(),
            state: SessionState::Creating,
            created_at: 1,
            updated_at: 1,
            owns_branch: true,
            ..Session::default()
        }
    }

    #[test]
    fn a_deleted_database_file_is_noticed_and_a_new_one_reopened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let mut old = Store::open(&path).expect("open");
        assert!(!old.replaced());
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert!(old.replaced(), "deleted");
        assert!(!old.reopen_if_replaced().expect("nothing to reopen"), "no file there yet");
        let new = Store::open(&path).expect("a new file");
        new.upsert_repo(Path::new("/r/.git"), Path::new("/r")).expect("repo");
        assert!(old.reopen_if_replaced().expect("reopen"));
        assert!(!old.replaced());
        assert_eq!(old.repos().expect("repos").len(), 1, "the new file's rows");
    }

    #[test]
    fn slugs_are_unique_among_live_sessions_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let repo = store.upsert_repo(Path::new("/r/.git"), Path::new("/r")).expect("repo");
        assert_eq!(store.upsert_repo(Path::new("/r/.git"), Path::new("/r")).expect("again"), repo);
        store.insert_session(&sample("a1", repo, "fix")).expect("insert");
        assert!(matches!(store.insert_session(&sample("a2", repo, "fix")), Err(StoreError::SlugTaken { .. })));
        store.mark_removed("a1", Some("refs/tandem/archive/fix/1"), None).expect("remove");
        store.insert_session(&sample("a2", repo, "fix")).expect("slug free again");
        let live = store.sessions(repo).expect("list");
        assert_eq!(live.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["a2"]);
        assert_eq!(store.session("a1").expect("get").expect("kept").state, SessionState::Removed);
    }

    #[test]
    fn metadata_round_trips_and_updates_field_by_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let repo = store.upsert_repo(Path::new("/r/.git"), Path::new("/r")).expect("repo");
        let mut s = sample("m1", repo, "meta");
        s.meta.title = Some("Fix the login redirect".to_owned());
        store.insert_session(&s).expect("insert");
        assert_eq!(store.session("m1").expect("get").expect("row").meta, s.meta);
        store
            .update_meta(
                "m1",
                &MetaUpdate { priority: Some(Priority::Urgent), pinned: Some(true), ..MetaUpdate::default() },
            )
            .expect("update");
        let meta = store.session("m1").expect("get").expect("row").meta;
        assert_eq!(meta.title.as_deref(), Some("Fix the login redirect"));
        assert_eq!((meta.priority, meta.status, meta.pinned), (Priority::Urgent, TaskStatus::InProgress, true));
        store.update_meta("m1", &MetaUpdate { title: Some(None), ..MetaUpdate::default() }).expect("clear title");
        assert_eq!(store.session("m1").expect("get").expect("row").meta.title, None);
        assert!("someday".parse::<Priority>().expect_err("bad").contains("urgent, high, medium, low, none"));
        assert_eq!("in-review".parse::<TaskStatus>(), Ok(TaskStatus::InReview));
    }

    #[test]
    fn reopening_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = Store::open(&path).expect("open");
        store.upsert_repo(Path::new("/r/.git"), Path::new("/r")).expect("repo");
        store.set_running("none", 1, 2).expect("no-op update");
        drop(store);
        let store = Store::open(&path).expect("reopen");
        assert!(store.find_repo(Path::new("/r/.git")).expect("find").is_some());
    }
}
