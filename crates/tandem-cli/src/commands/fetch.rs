//! `tandem fetch`: a remote session's work into this repository (issue
//! 21), so diff, review and merge work with the local tools.

use tandem_core::git;
use tandem_core::protocol::{RemoteReply, RemoteRequest};
use tandem_core::remote::Registry;
use tandem_core::text::visible;

use crate::commands::remote::{fail, link};
use crate::context::Context;
use crate::error::CliError;

/// Bring a remote session's branch (and a snapshot of its uncommitted
/// work) into this repository as refs/remotes/tandem/HOST/NAME
#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// The remote session: NAME, or HOST:NAME when more than one host
    /// has that name
    name: String,
    /// Print the refs as JSON
    #[arg(long)]
    json: bool,
}

/// What [`fetch`] brought.
pub(crate) struct Fetched {
    pub host: String,
    pub name: String,
    /// `refs/remotes/tandem/HOST/NAME`.
    pub branch_ref: String,
    pub head: String,
    /// `refs/remotes/tandem-wip/HOST/NAME` and its commit, when the
    /// worktree had uncommitted work.
    pub wip: Option<(String, String)>,
    /// The remote session's branch name.
    pub branch: String,
}

pub fn run(cx: &Context, args: &FetchArgs) -> Result<(), CliError> {
    let (host, name) = address(cx, &args.name)?;
    let fetched = fetch(cx, &host, &name)?;
    if args.json {
        let value = serde_json::json!({
            "host": fetched.host,
            "name": fetched.name,
            "branch": fetched.branch,
            "ref": fetched.branch_ref,
            "commit": fetched.head,
            "wip_ref": fetched.wip.as_ref().map(|w| &w.0),
            "wip_commit": fetched.wip.as_ref().map(|w| &w.1),
        });
        println!("{}", serde_json::to_string_pretty(&value).map_err(|e| CliError::Internal(e.to_string()))?);
        return Ok(());
    }
    println!("{} {}", fetched.branch_ref, git::short(&fetched.head));
    if let Some((r, c)) = &fetched.wip {
        println!("{r} {} (uncommitted work)", git::short(c));
    }
    Ok(())
}

/// The host and name of a remote session, as session commands find it
/// ([`crate::commands::route::remote_session`]).
///
/// # Errors
/// No host has it (or it is a local session), or more than one has.
pub(crate) fn address(cx: &Context, text: &str) -> Result<(String, String), CliError> {
    crate::commands::route::remote_session(cx, text)?.ok_or_else(|| {
        CliError::user(format!(
            "no remote host has a session named `{}`; `tandem list` shows every host's sessions",
            visible(text)
        ))
    })
}

/// Fetches session `name` of remote `host` into the current repository.
///
/// # Errors
/// The host does not answer or has no such session; the names it sends
/// are not valid refs; git's fetch fails.
pub(crate) fn fetch(cx: &Context, host: &str, name: &str) -> Result<Fetched, CliError> {
    let (repo, _) = cx.repo()?;
    let link = link(cx, host)?;
    let RemoteReply::Fetched { repo: remote_repo, branch, head, wip, wip_ref } =
        link.ask(&RemoteRequest::Fetch { name: name.to_owned() }).map_err(fail)?
    else {
        return Err(CliError::Internal("the remote answered a fetch with something else".into()));
    };
    // Names from the remote go into refspecs: each must be a valid ref.
    let branch_ref = format!("refs/remotes/tandem/{host}/{name}");
    // Apart from the branches: `NAME-wip` may be another session's name.
    let wip_local = format!("refs/remotes/tandem-wip/{host}/{name}");
    let refs_ok =
        [format!("refs/heads/{branch}"), branch_ref.clone(), wip_ref.clone().unwrap_or_else(|| "refs/x".into())]
            .iter()
            .all(|r| git::test(&repo.root, &["check-ref-format", r.as_str()]).unwrap_or(false));
    let hex = |s: &str| s.len() >= 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !refs_ok || !hex(&head) || wip.as_deref().is_some_and(|w| !hex(w)) || branch.starts_with('-') {
        return Err(CliError::user(format!(
            "remote {host} named refs tandem will not fetch ({}); check that host's tandem",
            visible(&branch)
        )));
    }
    let url = link.git_url(&remote_repo).map_err(fail)?;
    let mut specs = vec![format!("+refs/heads/{branch}:{branch_ref}")];
    if let Some(r) = &wip_ref {
        specs.push(format!("+{r}:{wip_local}"));
    }
    let out = link
        .git_command(&repo.root)
        .args(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--"])
        .arg(&url)
        .args(&specs)
        .output()?;
    if !out.status.success() {
        return Err(CliError::user(format!(
            "fetching {host}:{name} failed: {}",
            visible(String::from_utf8_lossy(&out.stderr).trim())
        )));
    }
    if wip.is_none() {
        let _ = git::delete_ref(&repo.root, &wip_local);
    }
    Ok(Fetched {
        host: host.to_owned(),
        name: name.to_owned(),
        branch_ref,
        head,
        wip: wip.map(|w| (wip_local, w)),
        branch,
    })
}

/// `tandem merge HOST:NAME`: fetches the remote session's branch, then
/// merges it into `into` (default: the session's base without `origin/`)
/// of this repository, as a merge commit (or only a fast-forward with
/// `ff`). Refuses, changing nothing, when the merge would conflict (the
/// files are named), when there is nothing to merge, and when the
/// worktree that has the target checked out has uncommitted changes.
/// Its uncommitted work on the remote is not merged (commit it there
/// first).
///
/// # Errors
/// As [`fetch`], and each refusal above.
pub(crate) fn merge(cx: &Context, host: &str, name: &str, into: Option<&str>, ff: bool) -> Result<(), CliError> {
    let (repo, _) = cx.repo()?;
    let fetched = fetch(cx, host, name)?;
    let known = Registry::new(&cx.paths).get(host).map_err(fail)?;
    let base = known.rows.iter().find(|r| r.name == name).map(|r| r.base.clone());
    let target = match (into, base) {
        (Some(t), _) => t.to_owned(),
        (None, Some(b)) => b.strip_prefix("origin/").unwrap_or(&b).to_owned(),
        (None, None) => git::current_branch(&repo.root)?.ok_or_else(|| {
            CliError::user("this repository's HEAD is on no branch; say which to merge into with --into BRANCH")
        })?,
    };
    let Some(old) = git::resolve_commit(&repo.root, &format!("refs/heads/{target}"))? else {
        return Err(CliError::user(format!(
            "no branch {} here to merge into; name one with --into BRANCH",
            visible(&target)
        )));
    };
    let theirs = &fetched.branch_ref;
    let shown = format!("{host}:{}", visible(name));
    let ahead: u32 = git::read(&repo.root, &["rev-list", "--count", &format!("{old}..{theirs}")])?.parse().unwrap_or(0);
    if ahead == 0 {
        return Err(CliError::user(format!(
            "{shown} has no commits that {} lacks; nothing to merge{}",
            visible(&target),
            if fetched.wip.is_some() {
                " (its uncommitted work is not merged: commit it on the remote first)"
            } else {
                ""
            }
        )));
    }
    let fast = git::test(&repo.root, &["merge-base", "--is-ancestor", &old, theirs])?;
    if ff && !fast {
        return Err(CliError::user(format!(
            "{} has moved on since {shown} branched; merge without --ff for a merge commit",
            visible(&target)
        )));
    }
    let out = git::command(&repo.root)
        .args(["merge-tree", "--write-tree", "--name-only", "--no-messages", &old, theirs])
        .output()?;
    if out.status.code() == Some(1) {
        let text = String::from_utf8_lossy(&out.stdout);
        let files: Vec<String> =
            text.lines().skip(1).take_while(|l| !l.is_empty()).map(|f| visible(f).into_owned()).collect();
        return Err(CliError::user(format!(
            "merging {shown} into {} would conflict in {}; nothing was changed",
            visible(&target),
            files.join(", ")
        )));
    }
    let tree = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned();
    let place = git::worktree_of_branch(&repo.root, &target)?;
    if let Some(path) = &place
        && git::status(path)?.changed > 0
    {
        return Err(CliError::user(format!(
            "{} has uncommitted changes in {}; commit or stash them, then merge again",
            visible(&target),
            visible(&path.display().to_string())
        )));
    }
    let new = if fast {
        git::resolve_commit(&repo.root, theirs)?.unwrap_or_default()
    } else {
        let message = format!("Merge tandem session {host}:{name} into {target}");
        git::read(&repo.root, &["commit-tree", &tree, "-p", &old, "-p", theirs, "-m", &message])?
    };
    match &place {
        // The checked-out branch moves by git's own merge, so its index
        // and files follow.
        Some(path) => {
            let mut cmd = git::command(path);
            cmd.args(["merge", "--quiet", "--ff-only", &new]);
            git::output(cmd)?;
        }
        None => {
            git::run(&repo.root, &["update-ref", "-m", "tandem merge", &format!("refs/heads/{target}"), &new, &old])?;
        }
    }
    println!("merged {shown} into {} ({})", visible(&target), git::short(&new));
    Ok(())
}
