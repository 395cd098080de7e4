use tandem_core::checkpoints::{Rewind, stat_text};
use tandem_core::git;

use crate::context::Context;
use crate::error::CliError;

/// Put a session's worktree back as it was at a checkpoint
///
/// The worktree as it is now is checkpointed first, so a rewind can be
/// undone (`--undo`). Files go back; HEAD, the branch and the index stay
/// unless `--hard` (the commits stay reachable from the checkpoints).
/// Refused while the agent is in the middle of a turn, unless `--stop`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["checkpoint", "undo"])))]
pub struct RewindArgs {
    /// The session's name
    name: String,
    /// The checkpoint to go back to (`tandem checkpoints NAME` lists them)
    checkpoint: Option<u32>,
    /// Go back to the state before the last rewind
    #[arg(long, conflicts_with_all = ["checkpoint", "files", "hard"])]
    undo: bool,
    /// Only these paths (relative to the worktree's top; a folder means
    /// all in it)
    #[arg(long, num_args = 1.., value_name = "PATH")]
    files: Vec<String>,
    /// Also move HEAD (the session's branch) and the index back
    #[arg(long, conflicts_with = "files")]
    hard: bool,
    /// Stop the agent first if it is in the middle of a turn
    #[arg(long)]
    stop: bool,
    /// Also restart the agent with its conversation as it was at that
    /// turn (claude-structured only: Claude Code's --resume-session-at)
    #[arg(long, conflicts_with_all = ["undo", "files"])]
    conversation: bool,
    /// Print what was done as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(cx: &Context, args: &RewindArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(Some(&args.name))?;
    let how = Rewind {
        to: args.checkpoint,
        undo: args.undo,
        files: args.files.clone(),
        hard: args.hard,
        keep: 0,
        conversation: args.conversation,
    };
    let done = cx.tandem()?.rewind(&session, &how, args.stop)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done).map_err(std::io::Error::from)?);
        return Ok(());
    }
    let what = if args.files.is_empty() { "its worktree".to_owned() } else { args.files.join(", ") };
    println!(
        "rewound {}: {what} as at checkpoint {} ({} written back, {} deleted)",
        session.slug, done.to.n, done.written, done.deleted
    );
    if let Some((from, to)) = &done.head_moved {
        println!("HEAD moved from {} to {}", git::short(from), git::short(to));
    }
    if done.resumed_at.is_some() {
        println!("its agent started again, its conversation as at the end of that turn");
    }
    println!(
        "what was there before is checkpoint {} ({}); `tandem rewind {} --undo` goes back to it",
        done.before.n,
        stat_text(&done.before),
        session.slug
    );
    Ok(())
}
