use std::io::{BufRead, IsTerminal, Write};

use tandem_core::git;
use tandem_core::protocol::Request;
use tandem_core::ship::github::{GitHubError, MergeMethod, PrState, PrStatus};
use tandem_core::ship::merge_journal::{self, Recovered};
use tandem_core::ship::pull_request::{self as pull, PullError};
use tandem_core::ship::{self, MergeMode, ShipError};
use tandem_core::store::Session;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Merge a session's branch into its base branch, now: locally, or
/// through its pull request on GitHub (`--remote`)
///
/// tandem never merges by itself. A local merge is refused, with nothing
/// changed, when the target has uncommitted changes or the merge would
/// conflict (the files are named). Once merged, the session is marked
/// done and tandem offers to archive it (`--archive` does it at once).
/// A merge that was interrupted (Ctrl-C, a closed terminal) is finished
/// by the next `tandem merge`, or rolled back by `--abort`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// One commit with all the session's changes
    #[arg(long, conflicts_with_all = ["rebase", "ff"])]
    squash: bool,
    /// Replay the session's commits onto the target, then fast-forward it
    #[arg(long, conflicts_with = "ff")]
    rebase: bool,
    /// Only a fast-forward
    #[arg(long)]
    ff: bool,
    /// The branch to merge into (default: the session's base branch)
    #[arg(long, value_name = "BRANCH")]
    into: Option<String>,
    /// Merge the session's pull request on GitHub (merge commit, --squash
    /// or --rebase), only if its head is the session's branch as pushed
    #[arg(long, conflicts_with_all = ["ff", "into"])]
    remote: bool,
    /// Archive the session once merged, without asking
    #[arg(long)]
    archive: bool,
    /// Roll back an interrupted merge of this session: its target branch
    /// and worktree go back to exactly how they were before it
    #[arg(long, conflicts_with_all = ["squash", "rebase", "ff", "into", "remote", "archive"])]
    abort: bool,
}

pub fn run(cx: &Context, args: &MergeArgs) -> Result<(), CliError> {
    let (repo, config, session) = cx.named(args.name.as_deref())?;
    let user = <CliError as From<ship::ShipError>>::from;
    let state = cx.paths.session_dir(&session.id);
    let interrupted = merge_journal::read(&state);
    if args.abort {
        let journal = interrupted.ok_or_else(|| user(ShipError::NoMergeToAbort { slug: session.slug.clone() }))?;
        match merge_journal::recover(&state, &journal, true).map_err(user)? {
            Recovered::RolledBack { old, kept } => {
                println!(
                    "rolled back the interrupted merge of {} into {}; it is at {} again, as before the merge",
                    session.slug,
                    visible(&journal.target),
                    git::short(&old)
                );
                if let Some(kept) = kept {
                    println!("what its worktree held before the rollback is kept at {}", visible(&kept));
                }
            }
            Recovered::Landed { commit } | Recovered::Left { now: commit } => println!(
                "{} moved elsewhere (now {}), or its worktree was switched, since the interrupted merge of {}; left it all as it is and dropped the merge's record",
                visible(&journal.target),
                git::short(&commit),
                session.slug
            ),
        }
        return Ok(());
    }
    let mode = match (args.squash, args.rebase, args.ff) {
        (true, _, _) => MergeMode::Squash,
        (_, true, _) => MergeMode::Rebase,
        (_, _, true) => MergeMode::FastForward,
        _ => MergeMode::Commit,
    };
    let message = match &session.meta.title {
        Some(title) => format!("{title} (tandem session {})", session.slug),
        None => format!("Merge tandem session {} (branch {})", session.slug, session.branch),
    };
    // A merge of this session that was interrupted: finished if it had
    // landed, else rolled back and made again below.
    let resumed = match &interrupted {
        Some(journal) => match merge_journal::recover(&state, journal, false).map_err(user)? {
            Recovered::Landed { commit } => Some(format!(
                "merged {} into {} (now {}); the interrupted merge had landed",
                session.slug,
                journal.target,
                git::short(&commit)
            )),
            Recovered::RolledBack { kept, .. } => {
                crate::context::note!(
                    "rolled back the interrupted merge of {} into {}; merging again",
                    session.slug,
                    visible(&journal.target)
                );
                if let Some(kept) = kept {
                    crate::context::note!("what its worktree held before the rollback is kept at {}", visible(&kept));
                }
                None
            }
            Recovered::Left { .. } => None,
        },
        None => None,
    };
    let mut pull = None;
    let landed = if let Some(done) = resumed {
        done
    } else if args.remote {
        let (landed, merged) = merge_remote(&config, &session, mode, &message)?;
        pull = Some(merged);
        landed
    } else {
        let target = match &args.into {
            Some(branch) => branch.clone(),
            None => ship::merge_target(&session).map_err(user)?,
        };
        let commit = ship::merge(&repo.root, &session, &target, mode, &message, &state).map_err(user)?;
        let how = match mode {
            MergeMode::Commit => "merged",
            MergeMode::Squash => "squashed",
            MergeMode::Rebase => "rebased and fast-forwarded",
            MergeMode::FastForward => "fast-forwarded",
        };
        format!("{how} {} into {target} (now {})", session.slug, git::short(&commit))
    };
    println!("{}", visible(&landed));
    // The supervisor records it: the pull request as merged, the history,
    // the session done.
    let request = Request::Landed {
        session_id: session.id.clone(),
        text: landed,
        pull: pull.as_ref().map(|(status, _)| status.clone()),
    };
    cx.supervisor()?.request(&request)?;
    if let Some((_, target)) = &pull {
        super::pr::watch(cx, &session.id, target);
    }
    offer_archive(cx, &session, args.archive)
}

/// Merges the session's pull request through GitHub's merge API, then
/// fetches so the local remote-tracking base has the merge. Returns what
/// landed, and the pull request's status (merged) with where it lives,
/// for the caller to record and watch.
fn merge_remote(
    config: &tandem_core::config::Config,
    session: &Session,
    mode: MergeMode,
    title: &str,
) -> Result<(String, (PrStatus, pull::Target)), CliError> {
    let user = |e: PullError| CliError::user(tandem_core::error_chain(&e));
    let number = session
        .pr_number
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| user(PullError::NoPull { slug: session.slug.clone() }))?;
    let target = pull::target(session, config, &|k| std::env::var(k).ok()).map_err(user)?;
    let pr = target.client.pull(&target.repo, number).map_err(|e| user(e.into()))?;
    if !matches!(pr.state, PrState::Open | PrState::Draft) {
        return Err(CliError::user(format!("pull request #{number} is {}; there is nothing to merge", pr.state)));
    }
    if pr.state == PrState::Draft {
        return Err(CliError::user(format!(
            "pull request #{number} is a draft; mark it ready for review on GitHub first: {}",
            pr.url
        )));
    }
    let dir = ship::worktree(session).map_err(|e| CliError::user(e.to_string()))?;
    let local = git::resolve_commit(dir, &format!("refs/heads/{}", session.branch))?.unwrap_or_default();
    if local != pr.head_sha {
        return Err(CliError::user(format!(
            "pull request #{number}'s head ({}) is not the session's branch ({}); push it first with `tandem push {}`",
            git::short(&pr.head_sha),
            git::short(&local),
            session.slug
        )));
    }
    let method = match mode {
        MergeMode::Squash => MergeMethod::Squash,
        MergeMode::Rebase => MergeMethod::Rebase,
        _ => MergeMethod::Merge,
    };
    let commit = target
        .client
        .merge(&target.repo, number, method, &pr.head_sha, Some(title))
        .map_err(|e: GitHubError| user(e.into()))?;
    // The base on the remote moved; let the local copy know.
    let _ = git::run(dir, &["fetch", "--quiet", "--no-tags", &target.remote, &pr.base_ref]);
    let mut status = pull::status_of(&pr);
    status.state = PrState::Merged;
    let landed = format!("merged pull request #{number} into {} on GitHub (now {})", pr.base_ref, git::short(&commit));
    Ok((landed, (status, target)))
}

/// Archives the session when asked to (`--archive`), or when the user
/// says yes on a terminal; else says how.
fn offer_archive(cx: &Context, session: &Session, archive: bool) -> Result<(), CliError> {
    let ask = !archive && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let yes = archive
        || (ask && {
            print!("its work has landed; archive session {} now? [y/N] ", session.slug);
            std::io::stdout().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            matches!(answer.trim(), "y" | "Y" | "yes")
        });
    if !yes {
        println!("its work has landed; `tandem archive {}` puts the session away", session.slug);
        return Ok(());
    }
    let session = super::archive::archive(cx, &session.id)?;
    println!("archived session {} (branch {} kept)", session.slug, tandem_core::text::visible(&session.branch));
    Ok(())
}
