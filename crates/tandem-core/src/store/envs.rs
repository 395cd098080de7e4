//! The environment a session was made with ([`RecordedEnv`]: never a
//! secret's value), and changes to its own `--env` pairs and env files.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::secrets::RecordedEnv;

impl Store {
    /// Records what session `session_id`'s agent got from the caller's
    /// environment, replacing an earlier record.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_recorded_env(&self, session_id: &str, recorded: &RecordedEnv) -> Result<(), StoreError> {
        let json = serde_json::to_string(recorded).expect("a RecordedEnv serializes");
        self.conn.execute(
            "INSERT INTO session_env (session_id, recorded) VALUES (?1, ?2)
             ON CONFLICT(session_id) DO UPDATE SET recorded = excluded.recorded",
            params![session_id, json],
        )?;
        Ok(())
    }

    /// What [`Store::set_recorded_env`] recorded; `None` for a session
    /// made before tandem recorded it (or a record it cannot read).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn recorded_env(&self, session_id: &str) -> Result<Option<RecordedEnv>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT recorded FROM session_env WHERE session_id = ?1", [session_id], |r| r.get(0))
            .optional()?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Sets a session's own `--env` pairs and env file paths (`respawn
    /// --env`, `--env-file`).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_env_layers(
        &self,
        session_id: &str,
        vars: &[(String, String)],
        env_files: &[PathBuf],
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET env = ?2, env_files = ?3 WHERE id = ?1",
            params![
                session_id,
                serde_json::to_string(vars).expect("pairs serialize"),
                serde_json::to_string(env_files).expect("paths serialize"),
            ],
        )?;
        Ok(())
    }
}
