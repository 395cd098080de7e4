use std::io::{IsTerminal, Write};

use tandem_core::client::Created;

use crate::context::Context;
use crate::error::CliError;

/// Start a new session from another's current state: its commits, its
/// uncommitted work (snapshotted, the source is untouched) and, for
/// Claude Code, a fork of its conversation (`--fork-session`)
///
/// Prints the new session's name and worktree, tab-separated; attach
/// with `tandem attach`.
#[derive(clap::Args, Debug)]
pub struct ForkArgs {
    /// The session to fork [default: the session whose worktree this is]
    name: Option<String>,
    /// The new session's name [default: NAME-fork]
    new: Option<String>,
}

pub fn run(cx: &Context, args: &ForkArgs) -> Result<(), CliError> {
    if let Some(new) = &args.new {
        tandem_core::session::slugs::validate(new)?;
    }
    let (_, _, source) = cx.named(args.name.as_deref())?;
    let (cols, rows) =
        if std::io::stdout().is_terminal() { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let Created { session, notes } =
        cx.tandem()?.fork(&source, args.new.as_deref(), crate::context::agent_env(), (rows, cols))?;
    for note in &notes {
        eprintln!("note: {}", tandem_core::text::visible(note));
    }
    writeln!(std::io::stdout().lock(), "{}\t{}", session.slug, session.path.display())?;
    Ok(())
}
