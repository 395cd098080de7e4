use std::io::Write;
use std::time::Duration;

use tandem_core::store::{Event, Session};
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Show a session's history: prompts, agent messages, tool calls and
/// their results, file changes, permission requests, state changes
///
/// Removed sessions keep their history; the name finds the live session,
/// else the latest one of that name.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// One JSON object per event, one per line
    #[arg(long)]
    json: bool,
    /// Keep printing events as they come (Ctrl-C to stop)
    #[arg(short, long)]
    follow: bool,
}

/// Events read per query.
const PAGE: usize = 1000;

pub fn run(cx: &Context, args: &HistoryArgs) -> Result<(), CliError> {
    let session = named(cx, args.name.as_deref())?;
    let store = cx.store()?;
    let mut out = std::io::stdout().lock();
    let mut last = 0;
    loop {
        let events = store.events(&session.id, last, PAGE)?;
        for event in &events {
            if args.json {
                writeln!(out, "{}", serde_json::to_string(event).expect("an event serializes"))?;
            } else {
                write_event(&mut out, &session, event)?;
            }
        }
        out.flush()?;
        match events.last() {
            Some(e) => last = e.id,
            None if args.follow => std::thread::sleep(Duration::from_millis(200)),
            None => return Ok(()),
        }
    }
}

/// The session `name` finds ([`tandem_core::session::lookup`]; none: the
/// one whose worktree this is), else the latest removed one of that name
/// in this repository (its history stays).
pub fn named(cx: &Context, name: Option<&str>) -> Result<Session, CliError> {
    let error = match cx.tandem()?.resolve(&cx.cwd, name) {
        Ok(session) => return Ok(session),
        Err(e) => e,
    };
    if let Some(name) = name
        && let Ok((repo, _)) = cx.repo()
    {
        let store = cx.store()?;
        if let Some(repo_id) = store.find_repo(&repo.common_dir)?
            && let Some(session) = store.session_named(repo_id, name)?
        {
            return Ok(session);
        }
    }
    Err(error.into())
}

/// `+MM:SS  kind         text`, the time since the session began, and
/// continuation lines indented under the text; control characters in the
/// text made visible ([`visible`]).
fn write_event(out: &mut impl Write, session: &Session, event: &Event) -> std::io::Result<()> {
    let secs = (event.at_ms / 1000 - session.created_at).max(0);
    let when = if secs >= 3600 {
        format!("+{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("+{:02}:{:02}", secs / 60, secs % 60)
    };
    let mut lines = event.text.lines();
    writeln!(out, "{when:>8}  {:<11}  {}", event.kind.as_str(), visible(lines.next().unwrap_or_default()))?;
    for line in lines {
        writeln!(out, "{:>8}  {:<11}  {}", "", "", visible(line))?;
    }
    Ok(())
}
