//! A session's history: events in order, and full-text search over them.
//!
//! An event is one thing that happened in a session: a prompt, an agent
//! message, a tool call or its result, a file change, a permission
//! request, a state change. `text` is what `tandem history` shows and
//! what `tandem search` finds (SQLite FTS5, kept in step by triggers);
//! `data` keeps the agent's own payload as JSON. An event whose text must
//! not be searchable (the content of a secret file copied in by
//! `.worktreeinclude`) is stored with `indexed = false` and never reaches
//! the index.

use std::str::FromStr;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::model::named_enum;

named_enum!(
    /// What an event records.
    EventKind, "event kind" {
        /// The user's prompt.
        Prompt = "prompt",
        /// Text the agent wrote to the user.
        Message = "message",
        /// The agent's reasoning, where it shows it.
        Reasoning = "reasoning",
        /// The agent asked to run a tool (with its input).
        ToolCall = "tool-call",
        /// A tool's result (a command's output, a file written).
        ToolResult = "tool-result",
        /// A file the agent created or changed (path, and the change).
        FileChange = "file-change",
        /// The agent waits for a permission decision or an answer.
        Permission = "permission",
        /// The agent's state changed.
        State = "state",
        /// Tokens and cost, where the agent reports them.
        Usage = "usage",
        /// A review session's findings (`tandem review`), in the history
        /// of the session it reviewed.
        Review = "review",
        /// A trial's handoff (`tandem task`): summary, files changed,
        /// tests run, open questions, next steps.
        Handoff = "handoff",
        /// A step that took the work toward its base: a pull request
        /// opened, merged or closed, a sync, a merge.
        Ship = "ship",
    }
);

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing across all sessions; orders a session's events.
    pub id: i64,
    pub session_id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub kind: EventKind,
    /// What is shown and searched.
    pub text: String,
    /// The agent's payload, as JSON.
    pub data: Option<serde_json::Value>,
}

/// A search result: the event, its session's name, and the matching
/// text with the matched words in `[` `]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub event: Event,
    pub session: String,
    pub snippet: String,
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub session_id: &'a str,
    pub kind: EventKind,
    pub text: String,
    pub data: Option<serde_json::Value>,
    /// False keeps the text out of the search index.
    pub indexed: bool,
}

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = row.get(3)?;
    let data: Option<String> = row.get(5)?;
    let bad = |i, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
    Ok(Event {
        id: row.get(0)?,
        session_id: row.get(1)?,
        at_ms: row.get(2)?,
        kind: kind.parse().map_err(|e| bad(3, e))?,
        text: row.get(4)?,
        data: data.map(|d| serde_json::from_str(&d)).transpose().map_err(|e| bad(5, e.to_string()))?,
    })
}

/// `value` with the secrets masked in every string (keys included).
fn mask_json(value: &serde_json::Value, secrets: &[String]) -> serde_json::Value {
    use serde_json::Value;
    let text = |t: &str| crate::secrets::redact(t, secrets).into_owned();
    match value {
        Value::String(t) => Value::String(text(t)),
        Value::Array(items) => Value::Array(items.iter().map(|v| mask_json(v, secrets)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (text(k), mask_json(v, secrets))).collect()),
        other => other.clone(),
    }
}

/// A user's words as an FTS5 query: each word quoted (so `-`, `:`, `*`
/// and quotes mean nothing special), all of them required.
fn fts_query(words: &str) -> String {
    // A NUL ends the query text for SQLite's parser ("unterminated
    // string"): it separates words like a space.
    words
        .split(|c: char| c.is_whitespace() || c == '\0')
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Store {
    /// Stores events in one transaction, at the current time, in order.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn add_events(&self, events: &[NewEvent<'_>]) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Masked before the write begins: finding a session's secrets reads
        // the store (and /proc), which must not happen inside the write
        // transaction ([`Store::write_transaction`]).
        let mut masked = Vec::with_capacity(events.len());
        let mut secrets: Option<(&str, Vec<String>)> = None;
        for e in events {
            // Each session's own secrets ([`Store::secrets_for`]), looked
            // up once per run of its events.
            if secrets.as_ref().is_none_or(|(id, _)| *id != e.session_id) {
                secrets = Some((e.session_id, self.secrets_for(e.session_id)));
            }
            let secrets = secrets.as_ref().map_or(&[][..], |(_, s)| s.as_slice());
            let text = crate::secrets::redact(&e.text, secrets).into_owned();
            // Masked string by string, so an escape written `\u001b` in
            // JSON hides nothing.
            let data = e.data.as_ref().map(|d| mask_json(d, secrets).to_string());
            masked.push((e, text, data));
        }
        let tx = self.write_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO events (session_id, at_ms, kind, text, data, indexed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (e, text, data) in masked {
                stmt.execute(params![e.session_id, now, e.kind.as_str(), text, data, e.indexed])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A session's events after `after` (an event id; 0 for all), oldest
    /// first, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn events(&self, session_id: &str, after: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, session_id, at_ms, kind, text, data FROM events
             WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows =
            stmt.query_map(params![session_id, after, i64::try_from(limit).unwrap_or(i64::MAX)], row_to_event)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A session's last `limit` events, oldest first (the agent view's
    /// history pane).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn recent_events(&self, session_id: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, session_id, at_ms, kind, text, data FROM events
             WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![session_id, i64::try_from(limit).unwrap_or(i64::MAX)], row_to_event)?;
        let mut events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    /// The text of a session's last event of `kind` (e.g. the agent's
    /// last message), if any.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn last_text(&self, session_id: &str, kind: EventKind) -> Result<Option<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT text FROM events WHERE session_id = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1")?;
        Ok(stmt.query_row(params![session_id, kind.as_str()], |r| r.get(0)).optional()?)
    }

    /// Full-text search over the events of the given sessions (`None`:
    /// every session, removed and archived ones included), best match
    /// first, at most `limit`. Every word of `words` must occur.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn search(&self, words: &str, sessions: Option<&[String]>, limit: usize) -> Result<Vec<Hit>, StoreError> {
        let query = fts_query(words);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let ids = sessions.map(|ids| serde_json::to_string(ids).expect("strings serialize"));
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id, e.session_id, e.at_ms, e.kind, e.text, e.data, s.slug,
                    snippet(events_fts, 0, '[', ']', '…', 12)
             FROM events_fts JOIN events e ON e.id = events_fts.rowid JOIN sessions s ON s.id = e.session_id
             WHERE events_fts MATCH ?1 AND (?2 IS NULL OR e.session_id IN (SELECT value FROM json_each(?2)))
             ORDER BY bm25(events_fts), e.id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![query, ids, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok(Hit { event: row_to_event(row)?, session: row.get(6)?, snippet: row.get(7)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores one event (as [`Store::add_events`]) and answers its id, for
    /// [`Store::delete_event`].
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn add_event(&self, event: &NewEvent<'_>) -> Result<i64, StoreError> {
        self.add_events(std::slice::from_ref(event))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Deletes one event (and its search index entry).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn delete_event(&self, id: i64) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM events WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Deletes a session's history (and its search index entries).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn delete_events(&self, session_id: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM events WHERE session_id = ?1", [session_id])?;
        Ok(())
    }

    /// The session called `slug` in a repository, removed ones included
    /// (their history stays): the live one if any, else the latest.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn session_named(&self, repo_id: i64, slug: &str) -> Result<Option<super::Session>, StoreError> {
        Ok(self
            .query(
                &format!(
                    "SELECT {} FROM sessions WHERE repo_id = ?1 AND slug = ?2
                     ORDER BY state != 'removed' DESC, created_at DESC, rowid DESC LIMIT 1",
                    super::COLUMNS
                ),
                params![repo_id, slug],
            )?
            .pop())
    }

    /// The ids of every session of a repository, removed ones included.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn session_ids(&self, repo_id: i64) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM sessions WHERE repo_id = ?1")?;
        let rows = stmt.query_map([repo_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records what a running agent reports it does, and what it asks
    /// when it waits for the user. Does nothing to a session that is no
    /// longer running.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_activity(&self, id: &str, activity: super::Activity, asking: Option<&str>) -> Result<(), StoreError> {
        // `activity_at` moves only when the activity changes.
        self.conn.execute(
            "UPDATE sessions SET activity_at = CASE WHEN activity IS ?2 THEN activity_at ELSE ?4 END,
                 activity = ?2, asking = ?3, updated_at = ?4
             WHERE id = ?1 AND state = 'running'",
            params![id, activity.as_str(), asking, crate::unix_now()],
        )?;
        Ok(())
    }

    /// Records the session's pull request: its number, and its status
    /// when known.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_pr(&self, id: &str, number: u64, status: Option<&crate::model::PrStatus>) -> Result<(), StoreError> {
        let status = status.map(|p| serde_json::to_string(p).expect("a PrStatus serializes"));
        self.conn.execute(
            "UPDATE sessions SET pr_number = ?2, pr = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, i64::try_from(number).unwrap_or(i64::MAX), status, crate::unix_now()],
        )?;
        Ok(())
    }

    /// Records the agent's own conversation id (for resuming it).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_agent_session(&self, id: &str, agent_session: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET agent_session = ?2 WHERE id = ?1", params![id, agent_session])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::tests::sample;

    /// A write that waits for another process's write must not fail with
    /// "database is locked" (SQLITE_BUSY_SNAPSHOT): a transaction that
    /// read (a session's secrets) before it wrote cannot wait, because
    /// the other write made its snapshot stale. CI saw this as a `tandem
    /// send` refused, and a host that never recorded its agent idle.
    #[test]
    fn events_written_while_another_connection_writes_wait_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = Store::open(&path).expect("open");
        let repo = store.upsert_repo(Path::new("/r/.git"), Path::new("/r")).expect("repo");
        store.insert_session(&crate::store::tests::sample("s1", repo, "one")).expect("session");
        let other = rusqlite::Connection::open(&path).expect("a second connection");
        other.execute_batch("BEGIN IMMEDIATE; UPDATE sessions SET title = 'x' WHERE id = 's1';").expect("write");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.execute_batch("COMMIT").expect("commit");
        });
        let event = NewEvent {
            session_id: "s1",
            kind: EventKind::Message,
            text: "after the other write".into(),
            data: None,
            indexed: true,
        };
        let written = store.add_events(&[event]);
        writer.join().expect("the other writer");
        written.expect("the event waits for the other write, then is stored");
        assert_eq!(store.events("s1", 0, 10).expect("events").len(), 1);
    }

    #[test]
    fn events_come_back_in_order_and_search_finds_words_not_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let repo = store.upsert_repo(Path::new("/r/.git"), Path::new("/r")).expect("repo");
        store.insert_session(&sample("a1", repo, "fix")).expect("insert");
        store.insert_session(&sample("b2", repo, "other")).expect("insert");
        let event = |session_id, kind, text: &str, indexed| NewEvent {
            session_id,
            kind,
            text: text.to_owned(),
            data: Some(serde_json::json!({ "n": 1 })),
            indexed,
        };
        store
            .add_events(&[
                event("a1", EventKind::Prompt, "Fix the login redirect", true),
                event("a1", EventKind::ToolResult, "cargo test: 12 passed; flaky-widget ok", true),
                event("a1", EventKind::ToolResult, "API_TOKEN=hunter2", false),
                event("b2", EventKind::Message, "The login page now redirects", true),
            ])
            .expect("add");
        let all = store.events("a1", 0, 100).expect("events");
        assert_eq!(
            all.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [EventKind::Prompt, EventKind::ToolResult, EventKind::ToolResult]
        );
        assert_eq!(all[0].data, Some(serde_json::json!({ "n": 1 })));
        assert_eq!(store.events("a1", all[0].id, 100).expect("after").len(), 2);

        let hits = store.search("login", None, 10).expect("search");
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().any(|h| h.session == "other" && h.snippet.contains("[login]")), "{hits:?}");
        let only_a1 = store.search("login", Some(&["a1".to_owned()]), 10).expect("search");
        assert_eq!(only_a1.len(), 1);
        assert_eq!(only_a1[0].event.kind, EventKind::Prompt);
        // Punctuation is not query syntax; every word must occur.
        assert_eq!(store.search("flaky-widget", None, 10).expect("dash").len(), 1);
        assert!(store.search("login widget", None, 10).expect("and").is_empty());
        assert!(store.search("hunter2", None, 10).expect("secret").is_empty(), "unindexed text is never found");
        assert!(store.search("   ", None, 10).expect("empty").is_empty());
    }
}
