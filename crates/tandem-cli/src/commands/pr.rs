use tandem_core::session::is_protected;
use tandem_core::ship::github::NewPull;
use tandem_core::ship::{self, pull_request as pull};
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Push a session's branch and open a pull request on GitHub
///
/// The repository comes from the remote's URL (github.com, or the host
/// in `github.host` / `github.api_url`); the token from GH_TOKEN or
/// GITHUB_TOKEN, else `gh auth token`. Title and body default to a
/// summary of the session: its title, brief, commits and what its agent
/// did. The pull request's number and link are recorded; the supervisor
/// then keeps its state, checks and review up to date in `tandem list`
/// and the agent view.
#[derive(clap::Args, Debug)]
pub struct PrArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// Open it as a draft
    #[arg(long)]
    draft: bool,
    /// The title [default: the session's title, its only commit's subject, or its brief]
    #[arg(long, value_name = "T")]
    title: Option<String>,
    /// The body [default: the brief, commits, diffstat and what the agent did]
    #[arg(long, value_name = "B")]
    body: Option<String>,
}

pub fn run(cx: &Context, args: &PrArgs) -> Result<(), CliError> {
    let (repo, config, session) = cx.named(args.name.as_deref())?;
    let user = |e: pull::PullError| CliError::user(tandem_core::error_chain(&e));
    if is_protected(&repo, &config, &session.branch)? {
        return Err(CliError::user(ship::ShipError::Protected { branch: session.branch.clone() }.to_string()));
    }
    if args.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(CliError::user("the title is empty; pass some text to --title, or leave it out"));
    }
    // Everything that can refuse does so before the push.
    let target = pull::target(&session, &config, &|k| std::env::var(k).ok()).map_err(user)?;
    pull::check_none_open(&target, &session).map_err(user)?;
    let base = pull::base_branch(&session, &target.remote).map_err(user)?;
    let store = cx.store()?;
    let (title, body) = match (&args.title, &args.body) {
        (Some(t), Some(b)) => (t.trim().to_owned(), b.clone()),
        _ => {
            let (title, body) = pull::default_text(&store, &session, &base).map_err(user)?;
            (args.title.clone().unwrap_or(title), args.body.clone().unwrap_or(body))
        }
    };
    ship::push(&session, &target.remote).map_err(|e| CliError::user(e.to_string()))?;
    let new = NewPull { title: &title, body: &body, head: &session.branch, base: &base, draft: args.draft };
    let opened = target.client.create_pull(&target.repo, &new).map_err(|e| user(e.into()))?;
    let status = pull::status_of(&opened);
    pull::record(&store, &session, &status, "opened").map_err(user)?;
    watch(cx, &session.id, &target);
    // The state and the URL are GitHub's answer.
    let line = format!("opened pull request #{} ({}) for {} into {base}", opened.number, opened.state, session.branch);
    println!("{}", visible(&line));
    println!("{}", visible(&opened.url));
    Ok(())
}

/// Has the supervisor poll the session's pull request now, with the
/// token this command used (kept in its memory only). A supervisor that
/// cannot be reached only means a later first poll.
pub(crate) fn watch(cx: &Context, session_id: &str, target: &pull::Target) {
    let request = tandem_core::protocol::Request::WatchPull {
        session_id: session_id.to_owned(),
        api_url: target.client.api().to_owned(),
        token: target.client.token().to_owned(),
    };
    if let Err(e) = cx.supervisor().and_then(|mut s| Ok(s.request(&request)?)) {
        tracing::debug!(error = %e, "the supervisor was not told about the pull request");
    }
}
