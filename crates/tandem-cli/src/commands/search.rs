use std::io::Write;

use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Search every session's history (full text; archived and removed
/// sessions included), best matches first
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Words that must all occur (punctuation is not query syntax)
    query: String,
    /// Only this session's history
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    session: Option<String>,
    /// Every repository's sessions (by default, this repository's, or
    /// those of the one `--repo PATH` names)
    #[arg(long)]
    all: bool,
    /// At most this many results
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// One JSON object per result, one per line
    #[arg(long)]
    json: bool,
}

pub fn run(cx: &Context, args: &SearchArgs) -> Result<(), CliError> {
    if args.query.split_whitespace().next().is_none() {
        return Err(CliError::user("the search query is empty; give one or more words"));
    }
    let scope = if args.all {
        None
    } else if let Some(name) = &args.session {
        Some(vec![super::history::named(cx, Some(name))?.id])
    } else {
        let (repo, _) = cx.repo()?;
        let store = cx.store()?;
        Some(match store.find_repo(&repo.common_dir)? {
            Some(id) => store.session_ids(id)?,
            None => Vec::new(),
        })
    };
    let hits = cx.store()?.search(&args.query, scope.as_deref(), args.limit)?;
    let mut out = std::io::stdout().lock();
    for hit in &hits {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(hit).expect("a hit serializes"))?;
        } else {
            let snippet = hit.snippet.replace('\n', " ");
            writeln!(out, "{}  {}  {}", visible(&hit.session), hit.event.kind.as_str(), visible(&snippet))?;
        }
    }
    Ok(())
}
