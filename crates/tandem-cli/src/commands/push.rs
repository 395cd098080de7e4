use tandem_core::session::is_protected;
use tandem_core::ship;

use crate::context::Context;
use crate::error::CliError;

/// Push a session's branch to the remote, with its upstream set
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// For a session on a remote host: push from that host, with its
    /// credentials, instead of fetching it here and pushing from here
    #[arg(long)]
    from_remote: bool,
}

pub fn run(cx: &Context, args: &PushArgs) -> Result<(), CliError> {
    if let Some(given) = &args.name
        && let Some((host, name)) = crate::commands::route::remote_session(cx, given)?
    {
        return push_remote_session(cx, &host, &name, args.from_remote);
    }
    if args.from_remote {
        return Err(CliError::user(
            "--from-remote pushes a session of a remote host from there; this session is on this machine: run `tandem push` without it",
        ));
    }
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

/// `tandem push HOST:NAME`: fetched here, then its branch pushed from
/// here to this repository's remote (`origin`) under the same name; with
/// `from_remote`, the host pushes it with its own credentials. A
/// protected branch (the default branch, `branch.protected`) is refused
/// either way.
fn push_remote_session(cx: &Context, host: &str, name: &str, from_remote: bool) -> Result<(), CliError> {
    use tandem_core::text::visible;
    if from_remote {
        let args = vec!["push".to_owned(), name.to_owned()];
        return crate::commands::remote::forward(
            cx,
            host,
            args,
            tandem_core::protocol::RunAt::Session { name: name.to_owned() },
            Vec::new(),
        );
    }
    let (repo, config) = cx.repo()?;
    let fetched = crate::commands::fetch::fetch(cx, host, name)?;
    if is_protected(&repo, &config, &fetched.branch)? {
        return Err(CliError::user(ship::ShipError::Protected { branch: fetched.branch.clone() }.to_string()));
    }
    let out = tandem_core::git::command(&repo.root)
        .args(["push", "--quiet", "--", "origin"])
        .arg(format!("{}:refs/heads/{}", fetched.branch_ref, fetched.branch))
        .stdin(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(CliError::user(format!(
            "pushing {host}:{} to origin failed: {}; `tandem push {host}:{} --from-remote` pushes from that host instead",
            visible(name),
            visible(String::from_utf8_lossy(&out.stderr).trim()),
            visible(name)
        )));
    }
    println!("pushed {host}:{} to origin as {}", visible(name), visible(&fetched.branch));
    Ok(())
}
