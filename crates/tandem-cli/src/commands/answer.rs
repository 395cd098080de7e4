//! `tandem approve` and `tandem deny`: answer the permission question a
//! session's agent is waiting on.
//!
//! Claude Code in its TUI shows its own permission dialog; its hooks tell
//! tandem the session is `needs-input` and what it asks. Approving presses
//! Enter on the dialog's first choice ("Yes"); denying presses Esc ("No")
//! and then, with `--message`, sends the message as the next prompt.
//! `claude-structured` gets its control response (`allow`, or `deny` with
//! the message) from its host.

use crate::context::Context;
use crate::error::CliError;

/// Allow what a session's agent asks permission for
#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

/// Refuse what a session's agent asks permission for
#[derive(clap::Args, Debug)]
pub struct DenyArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// Tell the agent why, or what to do instead (sent as the next prompt)
    #[arg(short, long)]
    message: Option<String>,
}

pub fn approve(cx: &Context, args: &ApproveArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    Ok(cx.tandem()?.answer(&session, true, None)?)
}

/// Deny it: Esc (or a `deny` control response), then `--message` as the
/// next prompt.
pub fn deny(cx: &Context, args: &DenyArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    Ok(cx.tandem()?.answer(&session, false, args.message.as_deref())?)
}
