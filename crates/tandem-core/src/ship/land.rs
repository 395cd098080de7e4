//! Landing a session's work: merging its branch into its base, locally or
//! through its pull request on GitHub, as `tandem merge` and the web
//! dashboard's merge do. An interrupted merge of the session (its journal
//! in the session's folder) is finished first when it had landed, or
//! rolled back and made again. The caller then has the supervisor record
//! it ([`crate::client::Tandem::landed`]).

use std::path::Path;

use super::github::{GitHubError, MergeMethod, PrState, PrStatus};
use super::merge_journal::{self, Recovered};
use super::pull_request::{self as pull, PullError};
use super::{MergeMode, ShipError};
use crate::config::Config;
use crate::git::{self, GitError};
use crate::store::Session;

/// How to merge: the mode, the branch to merge into (`None`: the
/// session's base branch), and whether through GitHub (`remote`: its pull
/// request, with a merge commit, a squash or a rebase).
#[derive(Debug, Clone, Copy)]
pub struct MergeRequest<'a> {
    pub mode: MergeMode,
    pub into: Option<&'a str>,
    pub remote: bool,
}

/// What [`merge`] landed.
pub struct Landed {
    /// In words: `merged s into main (now 1a2b3c4)`.
    pub text: String,
    /// The pull request GitHub merged (its status, merged) and where it
    /// lives, for the supervisor to record and watch.
    pub pull: Option<(PrStatus, pull::Target)>,
}

/// Why a merge was not made; nothing changed then.
#[derive(Debug, thiserror::Error)]
pub enum LandError {
    #[error(transparent)]
    Ship(#[from] ShipError),
    #[error(transparent)]
    Git(#[from] GitError),
    /// A pull request step (no pull request, GitHub's refusal, …).
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("pull request #{number} is {state}; there is nothing to merge")]
    NotOpen { number: u64, state: PrState },
    #[error("pull request #{number} is a draft; mark it ready for review on GitHub first: {url}")]
    Draft { number: u64, url: String },
    #[error(
        "pull request #{number}'s head ({head}) is not the session's branch ({local}); push it first with `tandem push {slug}`"
    )]
    HeadMoved { number: u64, head: String, local: String, slug: String },
}

/// Merges the session's branch as `request` says. `root`: the
/// repository's main worktree; `state`: the session's own folder (its
/// merge journal); `env` looks up the caller's environment (a GitHub
/// token); `notes` gets what the user should know even when the merge
/// then fails (an interrupted merge rolled back first). The texts are untrusted (branch and ref names): escape them to
/// show.
///
/// # Errors
/// [`LandError`]: the ship step's refusal ([`ShipError::TargetDirty`],
/// [`ShipError::WouldConflict`], …), the pull request's, git's.
pub fn merge(
    root: &Path,
    config: &Config,
    session: &Session,
    request: MergeRequest<'_>,
    state: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    notes: &mut Vec<String>,
) -> Result<Landed, LandError> {
    let message = match &session.meta.title {
        Some(title) => format!("{title} (tandem session {})", session.slug),
        None => format!("Merge tandem session {} (branch {})", session.slug, session.branch),
    };
    // A merge of this session that was interrupted: finished if it had
    // landed, else rolled back and made again below.
    if let Some(journal) = merge_journal::read(state) {
        match merge_journal::recover(state, &journal, false)? {
            Recovered::Landed { commit } => {
                let text = format!(
                    "merged {} into {} (now {}); the interrupted merge had landed",
                    session.slug,
                    journal.target,
                    git::short(&commit)
                );
                return Ok(Landed { text, pull: None });
            }
            Recovered::RolledBack { kept, .. } => {
                notes.push(format!(
                    "rolled back the interrupted merge of {} into {}; merging again",
                    session.slug, journal.target
                ));
                if let Some(kept) = kept {
                    notes.push(format!("what its worktree held before the rollback is kept at {kept}"));
                }
            }
            Recovered::Left { .. } => {}
        }
    }
    if request.remote {
        let (text, pull) = merge_remote(config, session, request.mode, &message, env)?;
        return Ok(Landed { text, pull: Some(pull) });
    }
    let target = match request.into {
        Some(branch) => branch.to_owned(),
        None => super::merge_target(session)?,
    };
    let commit = super::merge(root, session, &target, request.mode, &message, state)?;
    let how = match request.mode {
        MergeMode::Commit => "merged",
        MergeMode::Squash => "squashed",
        MergeMode::Rebase => "rebased and fast-forwarded",
        MergeMode::FastForward => "fast-forwarded",
    };
    let text = format!("{how} {} into {target} (now {})", session.slug, git::short(&commit));
    Ok(Landed { text, pull: None })
}

/// Merges the session's pull request through GitHub's merge API, then
/// fetches so the local remote-tracking base has the merge. Returns what
/// landed, and the pull request's status (merged) with where it lives.
fn merge_remote(
    config: &Config,
    session: &Session,
    mode: MergeMode,
    title: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, (PrStatus, pull::Target)), LandError> {
    let number = session
        .pr_number
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| PullError::NoPull { slug: session.slug.clone() })?;
    let target = pull::target(session, config, env)?;
    let pr = target.client.pull(&target.repo, number).map_err(PullError::from)?;
    if !matches!(pr.state, PrState::Open | PrState::Draft) {
        return Err(LandError::NotOpen { number, state: pr.state });
    }
    if pr.state == PrState::Draft {
        return Err(LandError::Draft { number, url: pr.url.clone() });
    }
    let dir = super::worktree(session)?;
    let local = git::resolve_commit(dir, &format!("refs/heads/{}", session.branch))?.unwrap_or_default();
    if local != pr.head_sha {
        return Err(LandError::HeadMoved {
            number,
            head: git::short(&pr.head_sha).to_owned(),
            local: git::short(&local).to_owned(),
            slug: session.slug.clone(),
        });
    }
    let method = match mode {
        MergeMode::Squash => MergeMethod::Squash,
        MergeMode::Rebase => MergeMethod::Rebase,
        _ => MergeMethod::Merge,
    };
    let commit = target
        .client
        .merge(&target.repo, number, method, &pr.head_sha, Some(title))
        .map_err(|e: GitHubError| PullError::from(e))?;
    // The base on the remote moved; let the local copy know.
    let _ = git::run(dir, &["fetch", "--quiet", "--no-tags", &target.remote, &pr.base_ref]);
    let mut status = pull::status_of(&pr);
    status.state = PrState::Merged;
    let landed = format!("merged pull request #{number} into {} on GitHub (now {})", pr.base_ref, git::short(&commit));
    Ok((landed, (status, target)))
}
