//! Pushing a session's branch (`tandem push`): to which remote
//! ([`push_remote`]), and the push itself ([`push()`]).

use super::sync::remote_tracking;
use super::{ShipError, worktree};
use crate::git::{self, GitError};
use crate::store::Session;

/// The remote a session's branch goes to: its base's remote when the base
/// is remote-tracking, else `origin`, else the only remote.
///
/// # Errors
/// [`ShipError::NoRemote`], git errors.
pub fn push_remote(session: &Session) -> Result<String, ShipError> {
    let dir = worktree(session)?;
    if let Some((remote, _)) = remote_tracking(dir, &session.base_ref)? {
        return Ok(remote);
    }
    let remotes = git::remotes(dir)?;
    if remotes.iter().any(|r| r == "origin") {
        return Ok("origin".to_owned());
    }
    match remotes.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(ShipError::NoRemote),
    }
}

/// Pushes the session's branch to `remote` with its upstream set
/// (`git push --set-upstream REMOTE BRANCH`). The caller checks that the
/// branch is not protected. Returns git's own report.
///
/// # Errors
/// [`ShipError::Push`] with git's message.
pub fn push(session: &Session, remote: &str) -> Result<String, ShipError> {
    let dir = worktree(session)?;
    let refspec = format!("refs/heads/{0}:refs/heads/{0}", session.branch);
    let mut cmd = git::command(dir);
    cmd.args(["push", "--set-upstream", remote, &refspec]);
    match git::output(cmd) {
        Ok(out) => Ok(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(GitError::Failed { stderr, .. }) => {
            Err(ShipError::Push(stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}
