use std::io::{IsTerminal, Write};

use tandem_core::client::Created;

use crate::context::Context;
use crate::error::CliError;

/// Start a new session from another's current state: its commits, its
/// uncommitted work (snapshotted, the source is untouched) and, for
/// Claude Code, a fork of its conversation (`--fork-session`)
///
/// Prints the new session's name and worktree, tab-separated; attach
/// with `tandem attach`. The new agent gets the source's environment,
/// not this shell's; `--env` changes one variable, `--env-from-shell`
/// takes this shell's.
#[derive(clap::Args, Debug)]
pub struct ForkArgs {
    /// The session to fork [default: the session whose worktree this is]
    name: Option<String>,
    /// The new session's name [default: NAME-fork]
    new: Option<String>,
    /// Print the new session as one JSON object (name, id, branch, path,
    /// agent, base, notes)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    env: crate::context::EnvChoiceArgs,
}

pub fn run(cx: &Context, args: &ForkArgs) -> Result<(), CliError> {
    if let Some(new) = &args.new {
        tandem_core::session::slugs::validate(new)?;
    }
    let choice = args.env.choice()?;
    let (_, _, source) = cx.named(args.name.as_deref())?;
    let (cols, rows) =
        if std::io::stdout().is_terminal() { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let Created { session, notes } =
        cx.tandem()?.fork_with(&source, args.new.as_deref(), crate::context::agent_env(), choice, (rows, cols))?;
    if args.json {
        writeln!(std::io::stdout().lock(), "{}", crate::context::created_json(&session, &notes))?;
        return Ok(());
    }
    for note in &notes {
        crate::context::note!("{}", tandem_core::text::visible(note));
    }
    writeln!(std::io::stdout().lock(), "{}\t{}", session.slug, session.path.display())?;
    Ok(())
}
