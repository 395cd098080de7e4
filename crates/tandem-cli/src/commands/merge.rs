use std::io::{BufRead, IsTerminal, Write};

use tandem_core::git;
use tandem_core::ship::land::{self, LandError, MergeRequest};
use tandem_core::ship::merge_journal::{self, Recovered};
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
    if let Some(given) = &args.name
        && let Some((host, name)) = crate::commands::route::remote_session(cx, given)?
    {
        if args.remote || args.abort || args.rebase || args.squash || args.archive {
            return Err(CliError::user(format!(
                "a session on remote host {host} merges here as a merge commit or --ff only; run `tandem merge {host}:{}` without --remote, --abort, --rebase, --squash and --archive",
                visible(&name)
            )));
        }
        return crate::commands::fetch::merge(cx, &host, &name, args.into.as_deref(), args.ff);
    }
    let (repo, config, session) = cx.named(args.name.as_deref())?;
    let user = <CliError as From<ship::ShipError>>::from;
    let state = cx.paths.session_dir(&session.id);
    let interrupted = merge_journal::read(&state);
    if args.abort {
        let journal = interrupted.ok_or_else(|| user(ShipError::NoMergeToAbort { slug: session.slug.clone() }))?;
        let recovered = tandem_core::sandbox_git::rewriting(&cx.paths, &repo, &session, || {
            merge_journal::recover(&state, &journal, true)
        })?;
        match recovered.map_err(user)? {
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
    // The session's worktree as it is, kept before the merge (a rebase
    // rewrites it) (issue 22).
    cx.tandem()?.checkpoint_before(&session, tandem_core::model::Cause::Merge)?;
    let request = MergeRequest { mode, into: args.into.as_deref(), remote: args.remote };
    let mut notes = Vec::new();
    // A sandboxed agent's side of the worktree is not read or written
    // while a rebase (or a rollback) rewrites it here; it gets the result
    // right after.
    let landed = tandem_core::sandbox_git::rewriting(&cx.paths, &repo, &session, || {
        land::merge(&repo.root, &config, &session, request, &state, &|k| std::env::var(k).ok(), &mut notes)
    })?;
    for note in &notes {
        crate::context::note!("{}", visible(note));
    }
    let landed = landed.map_err(land_error)?;
    println!("{}", visible(&landed.text));
    // The supervisor records it: the pull request as merged, the history,
    // the session done.
    cx.tandem()?.landed(&session, &landed)?;
    offer_archive(cx, &session, args.archive)
}

/// A merge's error as this command has always said it: a ship step's or
/// git's with its kind and hints, a pull request's in one line.
fn land_error(e: LandError) -> CliError {
    match e {
        LandError::Ship(e) => e.into(),
        LandError::Git(e) => e.into(),
        e => CliError::user(tandem_core::error_chain(&e)),
    }
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
