use std::io::{IsTerminal, Write};

use tandem_core::client::{Created, ReviewOf};

use crate::context::Context;
use crate::error::CliError;

/// Start a review session: a second agent reads a session's work and
/// reports what it finds
///
/// The review session gets its own read-only checkout of NAME's current
/// state (uncommitted work included; NAME is untouched), and its agent
/// gets NAME's brief and diff as its prompt. Each answer it gives is
/// stored in NAME's history, where `tandem history NAME` shows it.
/// Prints the review session's name and worktree, tab-separated.
#[derive(clap::Args, Debug)]
pub struct ReviewArgs {
    /// The session to review [default: the session whose worktree this is]
    name: Option<String>,
    /// The reviewing agent [default: NAME's agent when it takes prompts, else Claude Code]
    #[arg(long)]
    agent: Option<String>,
    /// The review session's name [default: NAME-review]
    #[arg(long = "as", value_name = "NEW")]
    new: Option<String>,
}

pub fn run(cx: &Context, args: &ReviewArgs) -> Result<(), CliError> {
    if let Some(new) = &args.new {
        tandem_core::session::slugs::validate(new)?;
    }
    let (_, _, source) = cx.named(args.name.as_deref())?;
    let (cols, rows) =
        if std::io::stdout().is_terminal() { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let review =
        ReviewOf { session: &source, agent: args.agent.as_deref(), name: args.new.as_deref(), size: (rows, cols) };
    let Created { session, notes } = cx.tandem()?.review(review, crate::context::agent_env())?;
    for note in &notes {
        eprintln!("note: {}", tandem_core::text::visible(note));
    }
    writeln!(std::io::stdout().lock(), "{}\t{}", session.slug, session.path.display())?;
    Ok(())
}
