//! Repository rows: each repository tandem manages, keyed by its
//! common dir, with its main worktree.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
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
}
