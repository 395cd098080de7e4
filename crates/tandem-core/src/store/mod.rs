//! The SQLite store: one database file (WAL) for every repository and
//! session of this user.
//!
//! The supervisor, hosts and CLI commands open it concurrently: WAL lets
//! readers run beside the one writer, `busy_timeout` makes writers wait
//! for each other instead of failing, and every write is a single
//! statement or an immediate transaction. Schema changes are numbered
//! migrations tracked in `PRAGMA user_version`, applied on open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

/// Migrations, in order; `user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE repos (
    id          INTEGER PRIMARY KEY,
    common_dir  TEXT NOT NULL UNIQUE,
    root        TEXT NOT NULL
);
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    repo_id     INTEGER NOT NULL REFERENCES repos(id),
    slug        TEXT NOT NULL,
    branch      TEXT NOT NULL,
    agent       TEXT NOT NULL,
    command     TEXT NOT NULL,
    path        TEXT NOT NULL,
    base_ref    TEXT NOT NULL,
    base_commit TEXT NOT NULL,
    state       TEXT NOT NULL,
    exit_code   INTEGER,
    host_pid    INTEGER,
    agent_pid   INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    archive_ref TEXT
);
CREATE UNIQUE INDEX sessions_live_slug ON sessions(repo_id, slug) WHERE state != 'removed';
CREATE INDEX sessions_state ON sessions(state);
",
    r"
ALTER TABLE sessions ADD COLUMN title TEXT;
ALTER TABLE sessions ADD COLUMN priority TEXT NOT NULL DEFAULT 'none';
ALTER TABLE sessions ADD COLUMN status TEXT NOT NULL DEFAULT 'in-progress';
ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
",
    r"
ALTER TABLE sessions ADD COLUMN owns_branch INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN pr_number INTEGER;
ALTER TABLE sessions ADD COLUMN included TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN last_commit TEXT;
ALTER TABLE sessions ADD COLUMN summary TEXT;
ALTER TABLE sessions ADD COLUMN archived_at INTEGER;
ALTER TABLE sessions ADD COLUMN pending TEXT;
CREATE TABLE hook_approvals (
    hash        TEXT PRIMARY KEY,
    command     TEXT NOT NULL,
    repo        TEXT NOT NULL,
    approved_at INTEGER NOT NULL
);
",
    r"
ALTER TABLE sessions ADD COLUMN activity TEXT;
ALTER TABLE sessions ADD COLUMN asking TEXT;
ALTER TABLE sessions ADD COLUMN agent_session TEXT;
ALTER TABLE sessions ADD COLUMN activity_at INTEGER;
ALTER TABLE sessions ADD COLUMN auto_named INTEGER NOT NULL DEFAULT 0;
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    data        TEXT,
    indexed     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX events_by_session ON events(session_id, id);
CREATE VIRTUAL TABLE events_fts USING fts5(text, content='events', content_rowid='id');
CREATE TRIGGER events_fts_insert AFTER INSERT ON events WHEN new.indexed BEGIN
    INSERT INTO events_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER events_fts_delete AFTER DELETE ON events WHEN old.indexed BEGIN
    INSERT INTO events_fts(events_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
",
    // `pr`: the pull request's last seen status (JSON, `github::PrStatus`).
    // `review_of`: the session a review session reviews. Whenever a review
    // session's agent ends a turn (activity becomes `idle`), its last
    // message of that turn is copied into the reviewed session's history
    // as a `review` event, whichever agent and writer (host or hook)
    // reported it: both store a turn's messages before its `idle`.
    r"
ALTER TABLE sessions ADD COLUMN pr TEXT;
ALTER TABLE sessions ADD COLUMN review_of TEXT;
CREATE TRIGGER review_findings AFTER UPDATE OF activity ON sessions
WHEN new.review_of IS NOT NULL AND new.activity = 'idle' AND old.activity IS NOT 'idle'
BEGIN
    INSERT INTO events (session_id, at_ms, kind, text, data)
    SELECT new.review_of, CAST(unixepoch('subsec') * 1000 AS INTEGER), 'review', m.text,
           json_object('review', new.slug, 'session', new.id, 'event', m.id)
    FROM events m
    WHERE m.session_id = new.id AND m.kind = 'message'
      AND m.id > COALESCE((SELECT max(p.id) FROM events p WHERE p.session_id = new.id AND p.kind = 'prompt'), 0)
      AND NOT EXISTS (SELECT 1 FROM events r WHERE r.session_id = new.review_of AND r.kind = 'review'
                      AND json_extract(r.data, '$.event') = m.id)
    ORDER BY m.id DESC LIMIT 1;
END;
",
    // Tasks and trials: a task is one objective; each trial is a session
    // with `task_id` and its number. `owned`: the paths a session's brief
    // gives it (JSON list). `checks`: a task's check command's result per
    // trial, keyed by the trial's state commit.
    r"
CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    repo_id     INTEGER NOT NULL REFERENCES repos(id),
    slug        TEXT NOT NULL,
    objective   TEXT NOT NULL,
    check_cmd   TEXT,
    owned       TEXT NOT NULL DEFAULT '[]',
    status      TEXT NOT NULL DEFAULT 'in-progress',
    promoted    TEXT,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX tasks_slug ON tasks(repo_id, slug);
ALTER TABLE sessions ADD COLUMN task_id TEXT;
ALTER TABLE sessions ADD COLUMN trial INTEGER;
ALTER TABLE sessions ADD COLUMN owned TEXT NOT NULL DEFAULT '[]';
CREATE TABLE checks (
    session_id  TEXT NOT NULL,
    state       TEXT NOT NULL,
    command     TEXT NOT NULL,
    exit_code   INTEGER,
    output      TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (session_id, state, command)
);
",
    // A session's own environment: `--env` pairs (JSON) and `--env-file`
    // paths (read again at each start, as their values are secrets and
    // never stored), and its `TANDEM_PORT`, unique among sessions that
    // hold one and given up as soon as its agent no longer runs.
    r"
ALTER TABLE sessions ADD COLUMN env TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN env_files TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN port INTEGER;
CREATE UNIQUE INDEX sessions_port ON sessions(port) WHERE port IS NOT NULL;
CREATE TRIGGER sessions_port_free AFTER UPDATE OF state ON sessions
WHEN new.port IS NOT NULL AND new.state NOT IN ('creating', 'running', 'lost')
BEGIN
    UPDATE sessions SET port = NULL WHERE id = new.id;
END;
",
    // How the session's agent is fenced in: NULL (not at all),
    // `workspace` (bubblewrap) or `container`.
    r"
ALTER TABLE sessions ADD COLUMN sandbox TEXT;
",
];

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

mod events;
mod tasks;
pub use events::{Event, EventKind, Hit, NewEvent};
// The rows the store reads and writes are plain data that also cross
// the wire: they live in [`crate::model`] and keep their names here.
pub use crate::model::{Activity, CheckResult, Meta, Priority, Session, SessionState, Task, TaskStatus};

/// A change to [`Meta`]: `None` fields stay as they are; `title:
/// Some(None)` clears the title.
#[derive(Debug, Clone, Default)]
pub struct MetaUpdate {
    pub title: Option<Option<String>>,
    pub priority: Option<Priority>,
    pub status: Option<TaskStatus>,
    pub pinned: Option<bool>,
}

const COLUMNS: &str = "id, repo_id, slug, branch, agent, command, path, base_ref, base_commit, state, \
     exit_code, host_pid, agent_pid, created_at, updated_at, archive_ref, title, priority, status, pinned, \
     owns_branch, pr_number, included, last_commit, summary, archived_at, pending, activity, asking, agent_session, activity_at, auto_named, pr, review_of, task_id, trial, owned, env, env_files, port, sandbox";

fn row_to_session(row: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    let command: String = row.get(5)?;
    let state: String = row.get(9)?;
    let bad = |i, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
    Ok(Session {
        id: row.get(0)?,
        repo_id: row.get(1)?,
        slug: row.get(2)?,
        branch: row.get(3)?,
        agent: row.get(4)?,
        command: serde_json::from_str(&command).map_err(|e| bad(5, e.to_string()))?,
        path: PathBuf::from(row.get::<_, String>(6)?),
        base_ref: row.get(7)?,
        base_commit: row.get(8)?,
        state: state.parse().map_err(|e| bad(9, e))?,
        exit_code: row.get(10)?,
        host_pid: row.get(11)?,
        agent_pid: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        archive_ref: row.get(15)?,
        meta: Meta {
            title: row.get(16)?,
            priority: row.get::<_, String>(17)?.parse().map_err(|e| bad(17, e))?,
            status: row.get::<_, String>(18)?.parse().map_err(|e| bad(18, e))?,
            pinned: row.get(19)?,
        },
        owns_branch: row.get(20)?,
        pr_number: row.get(21)?,
        included: serde_json::from_str(&row.get::<_, String>(22)?).map_err(|e| bad(22, e.to_string()))?,
        last_commit: row.get(23)?,
        summary: row.get(24)?,
        archived_at: row.get(25)?,
        pending: row.get(26)?,
        activity: row.get::<_, Option<String>>(27)?.map(|a| a.parse()).transpose().map_err(|e| bad(27, e))?,
        asking: row.get(28)?,
        agent_session: row.get(29)?,
        activity_at: row.get(30)?,
        auto_named: row.get(31)?,
        pr: row.get::<_, Option<String>>(32)?.and_then(|j| serde_json::from_str(&j).ok()),
        review_of: row.get(33)?,
        task_id: row.get(34)?,
        trial: row.get(35)?,
        owned: serde_json::from_str(&row.get::<_, String>(36)?).map_err(|e| bad(36, e.to_string()))?,
        env: serde_json::from_str(&row.get::<_, String>(37)?).map_err(|e| bad(37, e.to_string()))?,
        env_files: serde_json::from_str(&row.get::<_, String>(38)?).map_err(|e| bad(38, e.to_string()))?,
        port: row.get(39)?,
        sandbox: row.get::<_, Option<String>>(40)?.and_then(|m| m.parse().ok()),
    })
}

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
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            migrate(&conn)?;
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

    /// The id of the repository with this common dir, inserting it if new.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn upsert_repo(&self, common_dir: &Path, root: &Path) -> Result<i64, StoreError> {
        let common = common_dir.to_string_lossy();
        self.conn.execute(
            "INSERT INTO repos (common_dir, root) VALUES (?1, ?2)
             ON CONFLICT(common_dir) DO UPDATE SET root = excluded.root",
            params![common, root.to_string_lossy()],
        )?;
        Ok(self.conn.query_row("SELECT id FROM repos WHERE common_dir = ?1", [common], |r| r.get(0))?)
    }

    /// The id of the repository with this common dir, if known.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn find_repo(&self, common_dir: &Path) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT id FROM repos WHERE common_dir = ?1", [common_dir.to_string_lossy()], |r| r.get(0))
            .optional()?)
    }

    /// The main worktree recorded for a repository.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn repo_root(&self, repo_id: i64) -> Result<Option<PathBuf>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT root FROM repos WHERE id = ?1", [repo_id], |r| r.get::<_, String>(0))
            .optional()?
            .map(PathBuf::from))
    }

    /// Inserts a new session.
    ///
    /// # Errors
    /// [`StoreError::SlugTaken`] when a live session of the repository has
    /// the slug, else [`StoreError::Sqlite`].
    pub fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        let result = self.conn.execute(
            &format!(
                "INSERT INTO sessions ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,?32,?33,?34,?35,?36,?37,?38,?39,?40,?41)"
            ),
            params![
                s.id,
                s.repo_id,
                s.slug,
                s.branch,
                s.agent,
                serde_json::to_string(&s.command).expect("a Vec<String> serializes"),
                s.path.to_string_lossy(),
                s.base_ref,
                s.base_commit,
                s.state.as_str(),
                s.exit_code,
                s.host_pid,
                s.agent_pid,
                s.created_at,
                s.updated_at,
                s.archive_ref,
                s.meta.title,
                s.meta.priority.as_str(),
                s.meta.status.as_str(),
                s.meta.pinned,
                s.owns_branch,
                s.pr_number,
                serde_json::to_string(&s.included).expect("a Vec<String> serializes"),
                s.last_commit,
                s.summary,
                s.archived_at,
                s.pending,
                s.activity.map(Activity::as_str),
                s.asking,
                s.agent_session,
                s.activity_at,
                s.auto_named,
                s.pr.as_ref().map(|p| serde_json::to_string(p).expect("a PrStatus serializes")),
                s.review_of,
                s.task_id,
                s.trial,
                serde_json::to_string(&s.owned).expect("a Vec<String> serializes"),
                serde_json::to_string(&s.env).expect("pairs serialize"),
                serde_json::to_string(&s.env_files).expect("paths serialize"),
                s.port,
                s.sandbox.map(crate::model::SandboxMode::as_str),
            ],
        );
        match result {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::SlugTaken { slug: s.slug.clone() })
            }
            other => other.map(drop).map_err(Into::into),
        }
    }

    /// The live (not removed) session of a repository with this slug.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn session_by_slug(&self, repo_id: i64, slug: &str) -> Result<Option<Session>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM sessions WHERE repo_id = ?1 AND slug = ?2 AND state != 'removed'"),
                params![repo_id, slug],
                row_to_session,
            )
            .optional()?)
    }

    /// A session by id, removed or not.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"), [id], row_to_session)
            .optional()?)
    }

    /// A repository's live sessions, oldest first (in order of creation).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn sessions(&self, repo_id: i64) -> Result<Vec<Session>, StoreError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM sessions WHERE repo_id = ?1 AND state != 'removed' ORDER BY created_at, rowid"
            ),
            [repo_id],
        )
    }

    /// Every session that should have a live host (`creating`, `running`).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn sessions_with_hosts(&self) -> Result<Vec<Session>, StoreError> {
        self.query(&format!("SELECT {COLUMNS} FROM sessions WHERE state IN ('creating', 'running')"), [])
    }

    fn query<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<Session>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params, row_to_session)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records that the host runs the agent.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_running(&self, id: &str, host_pid: i32, agent_pid: i32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET state = 'running', host_pid = ?2, agent_pid = ?3, exit_code = NULL, updated_at = ?4,
             activity = NULL, asking = NULL WHERE id = ?1",
            params![id, host_pid, agent_pid, crate::unix_now()],
        )?;
        Ok(())
    }

    /// Records a state with its exit code (for `exited`). A removed
    /// session stays removed: a host reporting late cannot revive it.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_state(&self, id: &str, state: SessionState, exit_code: Option<i32>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET state = ?2, exit_code = ?3, updated_at = ?4 WHERE id = ?1 AND state != 'removed'",
            params![id, state.as_str(), exit_code, crate::unix_now()],
        )?;
        Ok(())
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

    /// Gives the session the lowest free block of `block` ports from
    /// `base` on (unless it holds one) and returns its first port. Blocks
    /// are unique among sessions (an index), freed when the agent stops
    /// running (a trigger).
    ///
    /// # Errors
    /// [`StoreError::NoPorts`] when every block up to port 65535 is taken.
    pub fn claim_port(&self, id: &str, base: u16, block: u16) -> Result<u16, StoreError> {
        let block = i64::from(block.max(1));
        for _ in 0..8 {
            if let Some(port) = self
                .conn
                .query_row("SELECT port FROM sessions WHERE id = ?1", params![id], |r| r.get::<_, Option<i64>>(0))
                .optional()?
                .flatten()
            {
                return Ok(u16::try_from(port).unwrap_or(0));
            }
            let mut stmt = self.conn.prepare("SELECT port FROM sessions WHERE port IS NOT NULL")?;
            let taken: std::collections::HashSet<i64> =
                stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            let free = (0..)
                .map(|n| i64::from(base) + n * block)
                .take_while(|p| p + block - 1 <= 65_535)
                .find(|p| !taken.contains(p))
                .ok_or(StoreError::NoPorts)?;
            match self.conn.execute("UPDATE sessions SET port = ?2 WHERE id = ?1", params![id, free]) {
                Ok(_) => return Ok(u16::try_from(free).unwrap_or(0)),
                // Taken in between by another writer: look again.
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::NoPorts)
    }

    /// Applies a metadata change.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn update_meta(&self, id: &str, update: &MetaUpdate) -> Result<(), StoreError> {
        // Masked before the write begins (see [`Store::write_transaction`]).
        let title = update.title.as_ref().map(|t| t.as_deref().map(|t| self.masked(id, t)));
        let tx = self.write_transaction()?;
        if let Some(title) = title {
            tx.execute("UPDATE sessions SET title = ?2 WHERE id = ?1", params![id, title])?;
        }
        if let Some(priority) = update.priority {
            tx.execute("UPDATE sessions SET priority = ?2 WHERE id = ?1", params![id, priority.as_str()])?;
        }
        if let Some(status) = update.status {
            tx.execute("UPDATE sessions SET status = ?2 WHERE id = ?1", params![id, status.as_str()])?;
        }
        if let Some(pinned) = update.pinned {
            tx.execute("UPDATE sessions SET pinned = ?2 WHERE id = ?1", params![id, pinned])?;
        }
        tx.execute("UPDATE sessions SET updated_at = ?2 WHERE id = ?1", params![id, crate::unix_now()])?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a session removed, keeping its row (and its archive ref);
    /// `pending` names work still to do, if any.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn mark_removed(&self, id: &str, archive_ref: Option<&str>, pending: Option<&str>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET state = 'removed', archive_ref = ?2, pending = ?4, updated_at = ?3 WHERE id = ?1",
            params![id, archive_ref, crate::unix_now(), pending],
        )?;
        Ok(())
    }

    /// Removed sessions with work still pending (see
    /// `session::end::FINISH_REMOVE`).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn unfinished_removals(&self) -> Result<Vec<Session>, StoreError> {
        self.query(
            &format!("SELECT {COLUMNS} FROM sessions WHERE state = 'removed' AND pending IS NOT NULL ORDER BY rowid"),
            [],
        )
    }

    /// Records what a finished creation learned: the copied
    /// `.worktreeinclude` paths and the branch's commit.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_created(&self, id: &str, included: &[String], last_commit: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET included = ?2, last_commit = ?3 WHERE id = ?1",
            params![id, serde_json::to_string(included).expect("a slice of String serializes"), last_commit],
        )?;
        Ok(())
    }

    /// Records an operation begun (`Some`) or finished (`None`).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_pending(&self, id: &str, pending: Option<&str>) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET pending = ?2 WHERE id = ?1", params![id, pending])?;
        Ok(())
    }

    /// Remembers the branch's commit as last seen.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_last_commit(&self, id: &str, commit: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET last_commit = ?2 WHERE id = ?1", params![id, commit])?;
        Ok(())
    }

    /// Records the snapshot ref `rm` or `archive` just made, before the
    /// worktree goes: a crash after that cannot part the row from the
    /// snapshot of work that is then nowhere else (issue 17).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_archive_ref(&self, id: &str, archive_ref: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET archive_ref = ?2 WHERE id = ?1", params![id, archive_ref])?;
        Ok(())
    }

    /// Marks a session archived, with its snapshot ref and summary.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn mark_archived(&self, id: &str, archive_ref: Option<&str>, summary: &str) -> Result<(), StoreError> {
        let now = crate::unix_now();
        self.conn.execute(
            "UPDATE sessions SET state = 'archived', archive_ref = ?2, summary = ?3, archived_at = ?4,
             pending = NULL, host_pid = NULL, agent_pid = NULL, updated_at = ?4 WHERE id = ?1 AND state != 'removed'",
            params![id, archive_ref, self.masked(id, summary), now],
        )?;
        Ok(())
    }

    /// Brings an archived session back as `stopped` with its worktree at
    /// `path`; its snapshot is re-applied by then, so the row lets go of
    /// it (`tandem gc` may drop it once old enough).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn mark_restored(&self, id: &str, path: &Path) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET state = 'stopped', path = ?2, archived_at = NULL, archive_ref = NULL, pending = NULL, updated_at = ?3
             WHERE id = ?1 AND state = 'archived'",
            params![id, path.to_string_lossy(), crate::unix_now()],
        )?;
        Ok(())
    }

    /// Updates a session's branch name (after `tandem doctor` finds it
    /// switched) or worktree path (after the repository moved).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_path(&self, id: &str, path: &Path) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET path = ?2 WHERE id = ?1", params![id, path.to_string_lossy()])?;
        Ok(())
    }

    /// Every session of every repository in the given states.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn sessions_in(&self, states: &[SessionState]) -> Result<Vec<Session>, StoreError> {
        let list = states.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",");
        self.query(&format!("SELECT {COLUMNS} FROM sessions WHERE state IN ({list}) ORDER BY created_at, rowid"), [])
    }

    /// Every repository: `(id, common_dir, root)`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn repos(&self) -> Result<Vec<(i64, PathBuf, PathBuf)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, common_dir, root FROM repos ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, PathBuf::from(r.get::<_, String>(1)?), PathBuf::from(r.get::<_, String>(2)?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Updates a repository's recorded main worktree (it moved).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_repo_location(&self, id: i64, common_dir: &Path, root: &Path) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE repos SET common_dir = ?2, root = ?3 WHERE id = ?1",
            params![id, common_dir.to_string_lossy(), root.to_string_lossy()],
        )?;
        Ok(())
    }

    /// Moves every session of repository `from` to repository `to` and
    /// forgets `from` (the repository moved and was recorded anew).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn merge_repo(&self, from: i64, to: i64) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        tx.execute("UPDATE sessions SET repo_id = ?2 WHERE repo_id = ?1", params![from, to])?;
        tx.execute("DELETE FROM repos WHERE id = ?1", [from])?;
        tx.commit()?;
        Ok(())
    }

    /// Records a branch tandem renamed (`git branch -m`) after the
    /// agent named the session, with the suggested title (unless the user
    /// set one); the session counts as named now.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn rename_branch(&self, id: &str, branch: &str, title: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET branch = ?2, title = COALESCE(title, ?3), auto_named = 0 WHERE id = ?1",
            params![id, branch, self.masked(id, title)],
        )?;
        Ok(())
    }

    /// Records the title the agent suggested (unless the user set one)
    /// and that the session is named now.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_suggested_title(&self, id: &str, title: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET title = COALESCE(title, ?2), auto_named = 0 WHERE id = ?1",
            params![id, self.masked(id, title)],
        )?;
        Ok(())
    }

    /// Marks a session as named (it keeps the name it has).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn clear_auto_named(&self, id: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET auto_named = 0 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Points a session at another branch (adopted by `tandem doctor`
    /// after it was switched by hand); tandem did not make that branch.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_branch(&self, id: &str, branch: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET branch = ?2, owns_branch = 0 WHERE id = ?1", params![id, branch])?;
        Ok(())
    }

    /// Whether a hook command with this content hash was approved.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn hook_approved(&self, hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM hook_approvals WHERE hash = ?1", [hash], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Records the approval of a hook command.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn approve_hook(&self, hash: &str, command: &str, repo: &Path) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO hook_approvals (hash, command, repo, approved_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash, command, repo.to_string_lossy(), crate::unix_now()],
        )?;
        Ok(())
    }

    /// Deletes a session row; only for a creation that failed before
    /// anything was made.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.delete_events(id)?;
        self.conn.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        Ok(())
    }
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let current = |conn: &Connection| -> rusqlite::Result<usize> {
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    };
    if current(conn)? >= MIGRATIONS.len() {
        return Ok(());
    }
    // Several processes may open a new database at once: the write lock,
    // taken first, makes one of them migrate and the others see it done.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current(conn)?) {
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
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
