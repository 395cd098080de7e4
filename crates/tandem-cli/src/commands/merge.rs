use tandem_core::session::ship::{self, MergeMode};

use crate::context::Context;
use crate::error::CliError;

/// Merge a session's branch into its base branch, locally, now
///
/// tandem never merges by itself. Refused, with nothing changed, when
/// the target has uncommitted changes or the merge would conflict.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The session's name
    name: String,
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
}

pub fn run(cx: &Context, args: &MergeArgs) -> Result<(), CliError> {
    let (repo, _, session) = cx.session(&args.name)?;
    let user = |e: ship::ShipError| CliError::user(e.to_string());
    let mode = match (args.squash, args.rebase, args.ff) {
        (true, _, _) => MergeMode::Squash,
        (_, true, _) => MergeMode::Rebase,
        (_, _, true) => MergeMode::FastForward,
        _ => MergeMode::Commit,
    };
    let target = match &args.into {
        Some(branch) => branch.clone(),
        None => ship::merge_target(&session).map_err(user)?,
    };
    let message = match &session.meta.title {
        Some(title) => format!("{title} (tandem session {})", session.slug),
        None => format!("Merge tandem session {} (branch {})", session.slug, session.branch),
    };
    let scratch = cx.paths.session_dir(&session.id).join("merge-worktree");
    let _ = std::fs::remove_dir_all(&scratch);
    let commit = ship::merge(&repo.root, &session, &target, mode, &message, &scratch).map_err(user)?;
    let how = match mode {
        MergeMode::Commit => "merged",
        MergeMode::Squash => "squashed",
        MergeMode::Rebase => "rebased and fast-forwarded",
        MergeMode::FastForward => "fast-forwarded",
    };
    println!("{how} {} into {target} (now {})", session.slug, &commit[..commit.len().min(12)]);
    println!("its work has landed; `tandem archive {}` puts the session away", session.slug);
    Ok(())
}
