//! The database schema: numbered migrations, tracked in `PRAGMA
//! user_version` and applied when a [`super::Store`] opens the file.

use rusqlite::Connection;

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
    // A turn that ends with a question (activity `asking`) ends it as
    // `idle` does: a review's findings are copied either way.
    r"
DROP TRIGGER review_findings;
CREATE TRIGGER review_findings AFTER UPDATE OF activity ON sessions
WHEN new.review_of IS NOT NULL AND new.activity IN ('idle', 'asking')
     AND (old.activity IS NULL OR old.activity NOT IN ('idle', 'asking'))
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
    // Names a session had before `tandem rename`: each still finds it
    // (`session::lookup`), while no other session has it as its name.
    r"
CREATE TABLE aliases (
    repo_id     INTEGER NOT NULL REFERENCES repos(id),
    alias       TEXT NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (repo_id, alias)
);
CREATE INDEX aliases_by_session ON aliases(session_id);
",
    // What a session's agent got from the environment of `tandem new`,
    // so `respawn` and `fork` give it again rather than the caller's
    // (issue 19): the variables that are not secrets, the names only of
    // those that are, and the names of each env file's variables (JSON,
    // [`crate::secrets::RecordedEnv`]). No row: a session made before.
    r"
CREATE TABLE session_env (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    recorded   TEXT NOT NULL
);
",
    // `creator`: the id of the session whose agent made this one through
    // `tandem mcp` (an orchestrator's sub-sessions group under it).
    r"
ALTER TABLE sessions ADD COLUMN creator TEXT;
",
    // Checkpoints (issue 22). `turns` counts the turns the agent ended
    // (activity entering `idle` or `asking`, whoever reported it: host,
    // hook or driver); `turns_seen` how many of them the supervisor's
    // checkpointer has taken care of, so a turn ended while no supervisor
    // ran is checkpointed by the next. One row per checkpoint; its commit
    // is kept by `refs/tandem/checkpoints/<session id>/<n>`, written after
    // the row, which is listed only once `ready` (so no one sees a
    // checkpoint whose ref is not there yet; a row left not ready by a
    // crash is mended at start).
    r"
ALTER TABLE sessions ADD COLUMN turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN turns_seen INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER turn_ended AFTER UPDATE OF activity ON sessions
WHEN new.activity IN ('idle', 'asking') AND (old.activity IS NULL OR old.activity NOT IN ('idle', 'asking'))
BEGIN
    UPDATE sessions SET turns = turns + 1 WHERE id = new.id;
END;
CREATE TABLE checkpoints (
    session_id  TEXT NOT NULL,
    n           INTEGER NOT NULL,
    commit_id   TEXT NOT NULL,
    tree        TEXT NOT NULL,
    head        TEXT,
    index_tree  TEXT,
    at_ms       INTEGER NOT NULL,
    cause       TEXT NOT NULL,
    rewound_to  INTEGER,
    prompt      TEXT,
    agent       TEXT NOT NULL,
    files       INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    removed     INTEGER NOT NULL,
    event_id    INTEGER NOT NULL,
    message_id  TEXT,
    ready       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, n)
);
",
];

/// Runs the migrations the database has not had yet, in one immediate
/// transaction.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
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
