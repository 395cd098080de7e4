use std::io::Write;

use crate::context::Context;
use crate::error::CliError;

/// Print a session's worktree path (e.g. `cd "$(tandem path NAME)"`)
#[derive(clap::Args, Debug)]
pub struct PathArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &PathArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    writeln!(std::io::stdout().lock(), "{}", session.path.display())?;
    Ok(())
}
