//! Checkpoint rows (issue 22): one per checkpoint of a session, and the
//! turn counters the supervisor's checkpointer follows (see the
//! migration's note in [`super::schema`]).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::model::{Cause, Checkpoint};

const COLUMNS: &str = "n, commit_id, tree, head, index_tree, at_ms, cause, rewound_to, prompt, agent, \
                       files, added, removed, message_id";

fn row_to_checkpoint(row: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    let cause: String = row.get(6)?;
    Ok(Checkpoint {
        n: row.get(0)?,
        commit: row.get(1)?,
        tree: row.get(2)?,
        head: row.get(3)?,
        index_tree: row.get(4)?,
        at_ms: row.get(5)?,
        // A cause this build does not know (a newer tandem wrote it).
        cause: cause.parse().unwrap_or(Cause::Turn),
        rewound_to: row.get(7)?,
        prompt: row.get(8)?,
        agent: row.get(9)?,
        files: row.get(10)?,
        added: row.get(11)?,
        removed: row.get(12)?,
        message_id: row.get(13)?,
    })
}

/// A session whose agent ended turns the checkpointer has not taken
/// care of yet ([`Store::turns_pending`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnsPending {
    pub session_id: String,
    /// The session's turn count now; pass it to [`Store::turns_seen`].
    pub turns: i64,
}

impl Store {
    /// Stores a new checkpoint of `session_id`, numbered one past its
    /// highest so far (in the same statement, so two writers never share
    /// a number), and returns it with that number. `checkpoint.n` is
    /// ignored. It is not listed until [`Store::checkpoint_ready`] (its
    /// ref written). `event_id`: the session's last history event then
    /// (where the next turn's prompt is looked for).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn add_checkpoint(
        &self,
        session_id: &str,
        checkpoint: &Checkpoint,
        event_id: i64,
    ) -> Result<Checkpoint, StoreError> {
        let n: u32 = self.conn.query_row(
            "INSERT INTO checkpoints (session_id, n, commit_id, tree, head, index_tree, at_ms, cause, rewound_to,
                                      prompt, agent, files, added, removed, event_id, message_id)
             SELECT ?1, COALESCE(MAX(n), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
             FROM checkpoints WHERE session_id = ?1
             RETURNING n",
            params![
                session_id,
                checkpoint.commit,
                checkpoint.tree,
                checkpoint.head,
                checkpoint.index_tree,
                checkpoint.at_ms,
                checkpoint.cause.as_str(),
                checkpoint.rewound_to,
                checkpoint.prompt,
                checkpoint.agent,
                checkpoint.files,
                checkpoint.added,
                checkpoint.removed,
                event_id,
                checkpoint.message_id,
            ],
            |r| r.get(0),
        )?;
        Ok(Checkpoint { n, ..checkpoint.clone() })
    }

    /// When the newest prompt of `session_id` after history event
    /// `after` and up to `upto` was sent (unix ms), if any.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn prompt_sent_at(&self, session_id: &str, after: i64, upto: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT at_ms FROM events WHERE session_id = ?1 AND id > ?2 AND id <= ?3 AND kind = 'prompt'
                 ORDER BY id DESC LIMIT 1",
                params![session_id, after, upto],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// When history event `id` of `session_id` was recorded (unix ms).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn event_at(&self, session_id: &str, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT at_ms FROM events WHERE session_id = ?1 AND id = ?2", params![session_id, id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Gives checkpoint `n` of `session_id` the turn it holds the end of:
    /// its prompt, history mark (`event_id`, see [`Store::add_checkpoint`])
    /// and message.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn relabel_checkpoint(
        &self,
        session_id: &str,
        n: u32,
        prompt: Option<&str>,
        event_id: i64,
        message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE checkpoints SET prompt = ?3, event_id = ?4, message_id = ?5 WHERE session_id = ?1 AND n = ?2",
            params![session_id, n, prompt, event_id, message_id],
        )?;
        Ok(())
    }

    /// A session's checkpoints, newest first.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn checkpoints(&self, session_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM checkpoints WHERE session_id = ?1 AND ready ORDER BY n DESC"
        ))?;
        let rows = stmt.query_map([session_id], row_to_checkpoint)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Checkpoint `n` of a session.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn checkpoint(&self, session_id: &str, n: u32) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM checkpoints WHERE session_id = ?1 AND n = ?2 AND ready"),
                params![session_id, n],
                row_to_checkpoint,
            )
            .optional()?)
    }

    /// A session's newest checkpoint and the history event it was made
    /// after.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn last_checkpoint(&self, session_id: &str) -> Result<Option<(Checkpoint, i64)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS}, event_id FROM checkpoints WHERE session_id = ?1 AND ready ORDER BY n DESC LIMIT 1"
                ),
                [session_id],
                |r| Ok((row_to_checkpoint(r)?, r.get(14)?)),
            )
            .optional()?)
    }

    /// Deletes the rows of checkpoints `ns` of a session (their refs are
    /// the caller's).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn delete_checkpoints(&self, session_id: &str, ns: &[u32]) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        for n in ns {
            tx.execute("DELETE FROM checkpoints WHERE session_id = ?1 AND n = ?2", params![session_id, n])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The numbers of every checkpoint row of a session, listed or not.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn checkpoint_numbers(&self, session_id: &str) -> Result<Vec<u32>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT n FROM checkpoints WHERE session_id = ?1 ORDER BY n")?;
        let rows = stmt.query_map([session_id], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Marks checkpoint `n` of a session listed: its ref is written.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn checkpoint_ready(&self, session_id: &str, n: u32) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE checkpoints SET ready = 1 WHERE session_id = ?1 AND n = ?2", params![session_id, n])?;
        Ok(())
    }

    /// Every checkpoint row of sessions in the repository `repo_id`,
    /// listed or not (session id, checkpoint, whether ready), for the
    /// start-up check that each has its ref.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn repo_checkpoints(&self, repo_id: i64) -> Result<Vec<(String, Checkpoint, bool)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS}, session_id, ready FROM checkpoints
             WHERE session_id IN (SELECT id FROM sessions WHERE repo_id = ?1) ORDER BY session_id, n"
        ))?;
        let rows = stmt
            .query_map([repo_id], |r| Ok((r.get(14)?, row_to_checkpoint(r)?, r.get(15)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Running sessions whose agent ended turns that no checkpoint took
    /// care of yet.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn turns_pending(&self) -> Result<Vec<TurnsPending>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, turns FROM sessions WHERE turns > turns_seen AND state IN ('running', 'exited', 'lost')",
        )?;
        let rows = stmt
            .query_map([], |r| Ok(TurnsPending { session_id: r.get(0)?, turns: r.get(1)? }))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records that the turns up to `turns` of a session were taken care
    /// of (checkpointed, or found to change nothing).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn turns_seen(&self, session_id: &str, turns: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET turns_seen = MAX(turns_seen, ?2) WHERE id = ?1",
            params![session_id, turns],
        )?;
        Ok(())
    }

    /// The prompt that started the turn that just ended: the last prompt
    /// of a session after history event `after` (turns that changed
    /// nothing made no checkpoint in between), and the turn's last event.
    ///
    /// When the agent is in a turn again already (a prompt queued while
    /// the ended turn ran is submitted the moment it ends, before the
    /// checkpointer looks), the newest prompt and what follows it belong
    /// to that turn: the answer stops before it, so the next checkpoint
    /// finds it. Activity and events are read in one snapshot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn turn_prompt(&self, session_id: &str, after: i64) -> Result<(Option<String>, i64), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let open = tx
            .query_row("SELECT activity IN ('running', 'needs-input') FROM sessions WHERE id = ?1", [session_id], |r| {
                r.get::<_, Option<bool>>(0)
            })
            .optional()?
            .flatten()
            .unwrap_or(false);
        let last: i64 =
            tx.query_row("SELECT COALESCE(MAX(id), 0) FROM events WHERE session_id = ?1", [session_id], |r| r.get(0))?;
        let newest = |upto: i64| {
            tx.query_row(
                "SELECT id, text FROM events WHERE session_id = ?1 AND id > ?2 AND id <= ?3 AND kind = 'prompt'
                 ORDER BY id DESC LIMIT 1",
                params![session_id, after, upto],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
        };
        let upto = match newest(last)? {
            Some((id, _)) if open => id - 1,
            _ => last,
        };
        let prompt = newest(upto)?.map(|(_, text)| text);
        tx.commit()?;
        Ok((prompt, upto))
    }

    /// The agent's id of its last message of a session between history
    /// events `after` and `upto` (`data.uuid` of a `message` event: Claude
    /// Code's assistant message id), if it gave one.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn last_message_id(&self, session_id: &str, after: i64, upto: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT json_extract(data, '$.uuid') FROM events
                 WHERE session_id = ?1 AND id > ?2 AND id <= ?3 AND kind = 'message'
                   AND json_extract(data, '$.uuid') IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                params![session_id, after, upto],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }
}
