use std::io::Write;

use tandem_core::checkpoints::{self, stat_text};
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// List a session's checkpoints: one per agent turn that changed
/// something, and one before each sync, merge and rewind, newest first
///
/// Each keeps the whole worktree (untracked files too) under
/// `refs/tandem/checkpoints/<session id>/<n>`; `tandem diff NAME
/// --checkpoint N` shows one, `tandem rewind NAME N` goes back to it.
#[derive(clap::Args, Debug)]
pub struct CheckpointsArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// One JSON object per checkpoint, in an array (`ref` added)
    #[arg(long)]
    json: bool,
}

pub fn run(cx: &Context, args: &CheckpointsArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let list = cx.tandem()?.checkpoints(&session)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let items: Vec<serde_json::Value> = list.iter().map(|c| checkpoints::to_json(&session.id, c)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&items).map_err(std::io::Error::from)?)?;
        return Ok(());
    }
    if list.is_empty() {
        writeln!(
            out,
            "{} has no checkpoints yet: one is made each time a turn of its agent changes something",
            session.slug
        )?;
        return Ok(());
    }
    let now = tandem_core::unix_now_ms();
    writeln!(out, "{:>4}  {:<8}  {:<16}  TURN", "N", "WHEN", "CHANGED")?;
    for c in &list {
        let when = format!("{} ago", tandem_core::short_age((now - c.at_ms) / 1000));
        writeln!(out, "{:>4}  {:<8}  {:<16}  {}", c.n, when, stat_text(c), visible(&checkpoints::describe(c)))?;
    }
    Ok(())
}
