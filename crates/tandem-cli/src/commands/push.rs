use tandem_core::session::is_protected;
use tandem_core::ship;

use crate::context::Context;
use crate::error::CliError;

/// Push a session's branch to the remote, with its upstream set
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &PushArgs) -> Result<(), CliError> {
    let (repo, config, session) = cx.named(args.name.as_deref())?;
    if is_protected(&repo, &config, &session.branch)? {
        return Err(CliError::user(ship::ShipError::Protected { branch: session.branch.clone() }.to_string()));
    }
    let user = <CliError as From<ship::ShipError>>::from;
    let remote = ship::push_remote(&session).map_err(user)?;
    ship::push(&session, &remote).map_err(user)?;
    let line = format!("pushed {} to {remote} (upstream {remote}/{})", session.branch, session.branch);
    println!("{}", tandem_core::text::visible(&line));
    Ok(())
}
