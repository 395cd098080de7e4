//! Approved hook texts: which repository commands the user allowed,
//! by the hash of their exact text.

use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
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
}
