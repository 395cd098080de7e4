//! Tasks (one objective, several trials) and the check results of their
//! trials.

use super::{CheckResult, Session, Store, StoreError, Task, TaskStatus};
use rusqlite::{OptionalExtension, params};

const TASK_COLUMNS: &str = "id, repo_id, slug, objective, check_cmd, owned, status, promoted, created_at";

fn row_to_task(row: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    let bad = |i, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
    Ok(Task {
        id: row.get(0)?,
        repo_id: row.get(1)?,
        slug: row.get(2)?,
        objective: row.get(3)?,
        check: row.get(4)?,
        owned: serde_json::from_str(&row.get::<_, String>(5)?).map_err(|e| bad(5, e.to_string()))?,
        status: row.get::<_, String>(6)?.parse().map_err(|e| bad(6, e))?,
        promoted: row.get(7)?,
        created_at: row.get(8)?,
    })
}

impl Store {
    /// Stores a new task.
    ///
    /// # Errors
    /// [`StoreError::SlugTaken`] when the repository has a task of that
    /// name.
    pub fn insert_task(&self, t: &Task) -> Result<(), StoreError> {
        let result = self.conn.execute(
            &format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
            params![
                t.id,
                t.repo_id,
                t.slug,
                t.objective,
                t.check,
                serde_json::to_string(&t.owned).expect("a Vec<String> serializes"),
                t.status.as_str(),
                t.promoted,
                t.created_at,
            ],
        );
        match result {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::SlugTaken { slug: t.slug.clone() })
            }
            other => other.map(drop).map_err(Into::into),
        }
    }

    /// The repository's task with this slug.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn task_by_slug(&self, repo_id: i64, slug: &str) -> Result<Option<Task>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE repo_id = ?1 AND slug = ?2"),
                params![repo_id, slug],
                row_to_task,
            )
            .optional()?)
    }

    /// A task by id.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"), params![id], row_to_task)
            .optional()?)
    }

    /// The repository's tasks, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn tasks(&self, repo_id: i64) -> Result<Vec<Task>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE repo_id = ?1 ORDER BY created_at, rowid"))?;
        let rows = stmt.query_map(params![repo_id], row_to_task)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every session of a task that is not removed (archived ones too),
    /// by trial number.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn trials(&self, task_id: &str) -> Result<Vec<Session>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM sessions WHERE task_id = ?1 AND state != 'removed' ORDER BY trial",
            super::COLUMNS
        ))?;
        let rows = stmt.query_map(params![task_id], super::row_to_session)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the tasks (of `task_id` only, when given) that have no
    /// session at all, removed ones included: every trial's creation was
    /// undone, as after a `kill -9` during `tandem task new` (issue 17,
    /// finding 5), so the task is as if never made and its name free.
    /// Returns the deleted tasks' slugs.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn delete_tasks_without_trials(&self, task_id: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "DELETE FROM tasks WHERE (?1 IS NULL OR id = ?1)
             AND NOT EXISTS (SELECT 1 FROM sessions WHERE sessions.task_id = tasks.id) RETURNING slug",
        )?;
        let rows = stmt.query_map(params![task_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets a task's status.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_task_status(&self, id: &str, status: TaskStatus) -> Result<(), StoreError> {
        self.conn.execute("UPDATE tasks SET status = ?2 WHERE id = ?1", params![id, status.as_str()])?;
        Ok(())
    }

    /// Records the promoted trial.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_promoted(&self, id: &str, session_id: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE tasks SET promoted = ?2 WHERE id = ?1", params![id, session_id])?;
        Ok(())
    }

    /// The check result for a trial's state and command, if run.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn check_result(
        &self,
        session_id: &str,
        state: &str,
        command: &str,
    ) -> Result<Option<CheckResult>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT exit_code, output, duration_ms, at FROM checks WHERE session_id = ?1 AND state = ?2 AND command = ?3",
                params![session_id, state, command],
                |row| Ok(CheckResult { exit_code: row.get(0)?, output: row.get(1)?, duration_ms: row.get(2)?, at: row.get(3)? }),
            )
            .optional()?)
    }

    /// Stores a check result.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn put_check_result(
        &self,
        session_id: &str,
        state: &str,
        command: &str,
        result: &CheckResult,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO checks (session_id, state, command, exit_code, output, duration_ms, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![session_id, state, command, result.exit_code, result.output, result.duration_ms, result.at],
        )?;
        Ok(())
    }
}
