use tandem_core::protocol::{Request, Response};

use crate::context::Context;
use crate::error::CliError;

/// Archive a session: stop its agent, snapshot uncommitted work, remove the
/// worktree; keep its branch, history and metadata, with a summary
///
/// `tandem list --archived` shows archived sessions; `tandem restore`
/// brings one back.
#[derive(clap::Args, Debug)]
pub struct ArchiveArgs {
    /// The session's name
    name: String,
}

pub fn run(cx: &Context, args: &ArchiveArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.session(&args.name)?;
    let request = Request::Archive { session_id: session.id.clone(), env: std::env::vars().collect() };
    let Response::Archived { session, notes } = cx.supervisor()?.request(&request)? else {
        return Err(CliError::Internal("the supervisor answered archive with something else".into()));
    };
    for note in &notes {
        eprintln!("note: {note}");
    }
    println!("archived session {} (branch {} kept)", session.slug, session.branch);
    if let Some(snapshot) = &session.archive_ref {
        println!("uncommitted work kept at {snapshot}");
    }
    if let Some(summary) = &session.summary {
        println!("summary: {summary}");
    }
    println!("bring it back with `tandem restore {}`", session.slug);
    Ok(())
}
