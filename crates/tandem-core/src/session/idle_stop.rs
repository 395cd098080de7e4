//! The mark the supervisor's reaper leaves on a session whose agent it
//! stopped for idleness (`supervisor.idle_timeout_secs`): a file
//! `idle-stopped` in the session's folder holding how long the agent had
//! been idle, in seconds, and the stopped agent's pid. The mark counts only
//! while the session is `stopped` with that agent pid, so a mark left from
//! an earlier run of the agent (restarted, then stopped some other way)
//! never wakes it.
//!
//! Such a session comes back by itself: the next `tandem attach`, `send`,
//! `approve` or `deny` starts its agent again, resuming its conversation
//! (issue 19). One the user stopped (`tandem stop`) or whose agent exited
//! does not. Starting the agent (any start: `respawn` too) and `tandem
//! stop` remove the mark; a file, not a column, so it needs no migration.

use std::io;

use crate::paths::Paths;
use crate::store::{Session, SessionState};

/// The mark's file name in the session's folder.
const FILE: &str = "idle-stopped";

/// Marks `session` (as it was when its agent was stopped) as stopped
/// after `idle_secs` seconds idle.
///
/// # Errors
/// I/O errors writing the file.
pub fn mark(paths: &Paths, session: &Session, idle_secs: u64) -> io::Result<()> {
    let dir = paths.session_dir(&session.id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(FILE), format!("{idle_secs} {}", session.agent_pid.unwrap_or(0)))
}

/// Removes the mark, if there is one.
pub fn clear(paths: &Paths, session_id: &str) {
    let _ = std::fs::remove_file(paths.session_dir(session_id).join(FILE));
}

/// How long `session` had been idle when the supervisor stopped it, in
/// seconds: `Some` only when it is `stopped` and the stop was the
/// supervisor's, for idleness.
#[must_use]
pub fn idle_stopped(paths: &Paths, session: &Session) -> Option<u64> {
    if session.state != SessionState::Stopped {
        return None;
    }
    let text = std::fs::read_to_string(paths.session_dir(&session.id).join(FILE)).ok()?;
    let (secs, pid) = text.trim().split_once(' ')?;
    (pid.parse::<i32>().ok()? == session.agent_pid.unwrap_or(0)).then(|| secs.parse().unwrap_or(0))
}

/// `idle_secs` in words for a note: `45 s`, `5 min`, `1 h`.
#[must_use]
pub fn duration_text(idle_secs: u64) -> String {
    match idle_secs {
        0..60 => format!("{idle_secs} s"),
        60..3600 => format!("{} min", idle_secs / 60),
        _ => format!("{} h", idle_secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_counts_for_the_stopped_agent_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().to_path_buf();
        let paths = Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| home.clone())).expect("paths");
        let session = Session {
            id: "0123456789ab".into(),
            state: SessionState::Running,
            agent_pid: Some(4242),
            ..Session::default()
        };
        mark(&paths, &session, 3700).expect("mark");
        assert_eq!(idle_stopped(&paths, &session), None, "running: no wake");
        let stopped = Session { state: SessionState::Stopped, ..session.clone() };
        assert_eq!(idle_stopped(&paths, &stopped), Some(3700));
        let later = Session { agent_pid: Some(5151), ..stopped.clone() };
        assert_eq!(idle_stopped(&paths, &later), None, "another run of the agent");
        clear(&paths, &stopped.id);
        assert_eq!(idle_stopped(&paths, &stopped), None);
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(duration_text(3), "3 s");
        assert_eq!(duration_text(59), "59 s");
        assert_eq!(duration_text(60), "1 min");
        assert_eq!(duration_text(3599), "59 min");
        assert_eq!(duration_text(3600), "1 h");
        assert_eq!(duration_text(7300), "2 h");
    }
}
