use std::time::Duration;

use tandem_core::sandbox_git;
use tandem_core::ship::{self, SyncMode};
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Bring the base's new commits into a session's branch
///
/// Rebases while the branch is on no remote, merges once it is (or as
/// told). On conflicts it stops, names the files, and leaves the rebase or
/// merge for you to finish or `--abort`. The branch's previous tip is
/// kept under refs/tandem/sync/, and so is what the agent commits while
/// the branch is being rewritten.
#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// Rebase the session's commits onto the base
    #[arg(long, conflicts_with_all = ["merge", "abort"])]
    rebase: bool,
    /// Merge the base into the session's branch
    #[arg(long, conflicts_with = "abort")]
    merge: bool,
    /// Undo a sync that stopped (on conflicts, or as the agent's git got
    /// in the way); commits made meanwhile are kept under refs/tandem/sync/
    #[arg(long)]
    abort: bool,
}

pub fn run(cx: &Context, args: &SyncArgs) -> Result<(), CliError> {
    let (repo, config, session) = cx.named(args.name.as_deref())?;
    let user = <CliError as From<ship::ShipError>>::from;
    let state = cx.paths.session_dir(&session.id);
    if args.abort {
        let aborted = sandbox_git::rewriting(&cx.paths, &repo, &session, || ship::sync_abort(&session, &state))?;
        let (mode, kept) = aborted.map_err(user)?;
        let what = if mode == SyncMode::Rebase { "rebase" } else { "merge" };
        println!("aborted the {what}; {} is as it was before the sync", session.slug);
        for r in kept {
            println!("a commit made while the branch was being rewritten is kept at {}", visible(&r));
        }
        return Ok(());
    }
    let mode = match (args.rebase, args.merge) {
        (true, _) => Some(SyncMode::Rebase),
        (_, true) => Some(SyncMode::Merge),
        _ => None,
    };
    // The worktree as it is, kept before the sync changes it (issue 22).
    cx.tandem()?.checkpoint_before(&session, tandem_core::model::Cause::Sync)?;
    let mut notes = Vec::new();
    // A sandboxed agent's side of the worktree is not read or written
    // while git rewrites it here; it gets the result right after.
    let outcome = sandbox_git::rewriting(&cx.paths, &repo, &session, || {
        crate::progress::during("fetching the base and syncing", || {
            ship::sync(&session, mode, Duration::from_millis(config.base.fetch_timeout_ms), &state, &mut notes)
        })
    })?;
    let outcome = outcome.map_err(user)?;
    for note in notes {
        crate::context::note!("{}", visible(&note));
    }
    match ship::sync_said(&session, &outcome) {
        Ok(line) => println!("{}", visible(&line)),
        Err(stopped) => return Err(CliError::user(stopped)),
    }
    Ok(())
}
