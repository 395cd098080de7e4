use std::io::IsTerminal;

use tandem_core::client::Created;

use crate::context::Context;
use crate::error::CliError;

/// Bring an archived session back: its worktree from its branch, with its
/// uncommitted work re-applied, and its agent started afresh
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The archived session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &RestoreArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let (cols, rows) =
        if std::io::stdout().is_terminal() { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let Created { session, notes } = cx.tandem()?.restore(&session, crate::context::agent_env(), (rows, cols))?;
    for note in &notes {
        eprintln!("note: {}", tandem_core::text::visible(note));
    }
    println!("restored session {} in {}", session.slug, session.path.display());
    Ok(())
}
