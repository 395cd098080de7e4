use std::io::Write;

use tandem_core::store::{MetaUpdate, Priority, TaskStatus};

use crate::context::Context;
use crate::error::CliError;

/// Set a session's title, priority, task status or pin
#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// Free-text title ("" clears it)
    #[arg(long)]
    title: Option<String>,
    /// urgent, high, medium, low or none
    #[arg(long)]
    priority: Option<String>,
    /// backlog, in-progress, in-review, done or cancelled
    #[arg(long)]
    status: Option<String>,
    /// List it first
    #[arg(long, conflicts_with = "unpin")]
    pin: bool,
    /// Stop listing it first
    #[arg(long)]
    unpin: bool,
}

pub fn run(cx: &Context, args: &SetArgs) -> Result<(), CliError> {
    // Parse every value before changing anything.
    let update = MetaUpdate {
        title: args.title.as_ref().map(|t| Some(t.trim().to_owned()).filter(|t| !t.is_empty())),
        priority: args.priority.as_deref().map(str::parse::<Priority>).transpose().map_err(CliError::User)?,
        status: args.status.as_deref().map(str::parse::<TaskStatus>).transpose().map_err(CliError::User)?,
        pinned: if args.pin {
            Some(true)
        } else if args.unpin {
            Some(false)
        } else {
            None
        },
    };
    if update.title.is_none() && update.priority.is_none() && update.status.is_none() && update.pinned.is_none() {
        return Err(CliError::user(
            "nothing to set; pass --title, --priority, --status, --pin or --unpin (see `tandem set --help`)",
        ));
    }
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let meta = cx.tandem()?.set_meta(&session, &update)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: priority {}, status {}{}{}",
        session.slug,
        meta.priority.as_str(),
        meta.status.as_str(),
        if meta.pinned { ", pinned" } else { "" },
        meta.title.map(|t| format!(", title {t:?}")).unwrap_or_default()
    )?;
    Ok(())
}
