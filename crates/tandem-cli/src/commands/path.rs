use std::io::Write;

use crate::context::Context;
use crate::error::CliError;

/// Print a session's worktree path (e.g. `cd "$(tandem path NAME)"`)
#[derive(clap::Args, Debug)]
pub struct PathArgs {
    /// The session's name
    name: String,
}

pub fn run(cx: &Context, args: &PathArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.session(&args.name)?;
    writeln!(std::io::stdout().lock(), "{}", session.path.display())?;
    Ok(())
}
