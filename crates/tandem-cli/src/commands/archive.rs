use tandem_core::client::Created;
use tandem_core::store::Session;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Archive a session: stop its agent, snapshot uncommitted work, remove the
/// worktree; keep its branch, history and metadata, with a summary
///
/// `tandem list --archived` shows archived sessions; `tandem restore`
/// brings one back.
#[derive(clap::Args, Debug)]
pub struct ArchiveArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &ArchiveArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let session = archive(cx, &session.id)?;
    println!("archived session {} (branch {} kept)", session.slug, visible(&session.branch));
    if let Some(snapshot) = &session.archive_ref {
        println!("uncommitted work kept at {}", visible(snapshot));
    }
    if let Some(summary) = &session.summary {
        // Written by the agent or a summary command: shown line by line.
        let mut lines = summary.lines();
        println!("summary: {}", visible(lines.next().unwrap_or_default()));
        for line in lines {
            println!("         {}", visible(line));
        }
    }
    println!("bring it back with `tandem restore {}`", session.slug);
    Ok(())
}

/// Has the supervisor archive a session (with this command's
/// environment, for the summary); prints its notes; returns the archived
/// session.
pub(crate) fn archive(cx: &Context, session_id: &str) -> Result<Session, CliError> {
    let Created { session, notes } = cx.tandem()?.archive(session_id, crate::context::agent_env())?;
    for note in &notes {
        eprintln!("note: {}", tandem_core::text::visible(note));
    }
    Ok(session)
}
