//! A renamed session's old names (`tandem rename`): each still finds the
//! session ([`crate::session::lookup`]) until another session takes it
//! as its name.

use std::path::Path;

use rusqlite::params;

use super::{Store, StoreError};

/// What [`Store::rename_session`] changes: the new name, branch and
/// worktree folder (the same as before when kept).
#[derive(Debug, Clone, Copy)]
pub struct Renaming<'a> {
    pub slug: &'a str,
    pub branch: &'a str,
    pub path: &'a Path,
}

impl Store {
    /// A repository's aliases: `(alias, session id)`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn aliases(&self, repo_id: i64) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT alias, session_id FROM aliases WHERE repo_id = ?1 ORDER BY created_at, rowid")?;
        let rows = stmt.query_map([repo_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The old names of one session, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn aliases_of(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT alias FROM aliases WHERE session_id = ?1 ORDER BY created_at, rowid")?;
        let rows = stmt.query_map([session_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Renames a session in one transaction: its name, branch and folder
    /// as `to` says, its old name kept as an alias, and the new name no
    /// longer an alias of anything in the repository.
    ///
    /// # Errors
    /// [`StoreError::SlugTaken`] when a live session has the new name;
    /// [`StoreError::Sqlite`].
    pub fn rename_session(&self, id: &str, to: Renaming<'_>) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        let (repo_id, old): (i64, String) =
            tx.query_row("SELECT repo_id, slug FROM sessions WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let updated = tx.execute(
            "UPDATE sessions SET slug = ?2, branch = ?3, path = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, to.slug, to.branch, to.path.to_string_lossy(), crate::unix_now()],
        );
        match updated {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(StoreError::SlugTaken { slug: to.slug.to_owned() });
            }
            other => other?,
        };
        tx.execute("DELETE FROM aliases WHERE repo_id = ?1 AND alias = ?2", params![repo_id, to.slug])?;
        if old != to.slug {
            tx.execute(
                "INSERT OR REPLACE INTO aliases (repo_id, alias, session_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![repo_id, old, id, crate::unix_now()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
