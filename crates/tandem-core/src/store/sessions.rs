//! Session rows: insert, look up, list, and every change to one
//! session's state, metadata, branch, paths and port.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::{Activity, Meta, Priority, Session, SessionState, Store, StoreError, TaskStatus};

/// A change to [`Meta`]: `None` fields stay as they are; `title:
/// Some(None)` clears the title.
#[derive(Debug, Clone, Default)]
pub struct MetaUpdate {
    pub title: Option<Option<String>>,
    pub priority: Option<Priority>,
    pub status: Option<TaskStatus>,
    pub pinned: Option<bool>,
}

pub(super) const COLUMNS: &str = "id, repo_id, slug, branch, agent, command, path, base_ref, base_commit, state, \
     exit_code, host_pid, agent_pid, created_at, updated_at, archive_ref, title, priority, status, pinned, \
     owns_branch, pr_number, included, last_commit, summary, archived_at, pending, activity, asking, agent_session, activity_at, auto_named, pr, review_of, task_id, trial, owned, env, env_files, port, sandbox, creator";

pub(super) fn row_to_session(row: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
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
        creator: row.get(41)?,
    })
}

impl Store {
    /// Inserts a new session.
    ///
    /// # Errors
    /// [`StoreError::SlugTaken`] when a live session of the repository has
    /// the slug, else [`StoreError::Sqlite`].
    pub fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        let result = self.conn.execute(
            &format!(
                "INSERT INTO sessions ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,?32,?33,?34,?35,?36,?37,?38,?39,?40,?41,?42)"
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
                s.creator,
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

    pub(super) fn query<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<Session>, StoreError> {
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
