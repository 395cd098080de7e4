use tandem_core::ship::pull_request::{self as pull, PullOptions};
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
    /// For a session on a remote host: open it from that host, with its
    /// GitHub credentials (the only way for now)
    #[arg(long)]
    from_remote: bool,
}

pub fn run(cx: &Context, args: &PrArgs) -> Result<(), CliError> {
    if let Some(given) = &args.name
        && let Some((host, name)) = crate::commands::route::remote_session(cx, given)?
    {
        let shown = tandem_core::text::visible(&name);
        if !args.from_remote {
            return Err(CliError::user(format!(
                "{host}:{shown} is a session on remote host {host}; open its pull request from there with `tandem pr {host}:{shown} --from-remote`, or `tandem push {host}:{shown}` and open one yourself"
            )));
        }
        let mut forwarded = vec!["pr".to_owned(), name.clone()];
        if args.draft {
            forwarded.push("--draft".to_owned());
        }
        for (flag, value) in [("--title", &args.title), ("--body", &args.body)] {
            if let Some(v) = value {
                forwarded.push(flag.to_owned());
                forwarded.push(v.clone());
            }
        }
        let at = tandem_core::protocol::RunAt::Session { name: name.clone() };
        return crate::commands::remote::forward(cx, &host, forwarded, at, Vec::new());
    }
    if args.from_remote {
        return Err(CliError::user(
            "--from-remote opens a pull request for a session of a remote host from there; this session is on this machine: run `tandem pr` without it",
        ));
    }
    let (repo, config, session) = cx.named(args.name.as_deref())?;
    let options = PullOptions { draft: args.draft, title: args.title.as_deref(), body: args.body.as_deref() };
    // A spinner for each slow step (the push, GitHub's answer).
    let mut spinner = None;
    let mut step = |what: &str| {
        spinner = None;
        spinner = Some(crate::progress::Spinner::start(what));
    };
    let opened = pull::open(&cx.store()?, &repo, &config, &session, options, &|k| std::env::var(k).ok(), &mut step)
        .map_err(|e| CliError::user(tandem_core::error_chain(&e)))?;
    drop(spinner);
    cx.tandem()?.watch_pull(&session.id, &opened.target);
    // The state and the URL are GitHub's answer.
    println!("{}", visible(&opened.line));
    println!("{}", visible(&opened.url));
    Ok(())
}
