//! Which machine a session command goes to (issue 21): a session named
//! `HOST:NAME`, or a bare NAME no local session has and exactly one
//! remote host does, is carried out on that host by its own tandem
//! (`tandem proxy` runs the same command there); `local:NAME` is this
//! machine's. The command's output comes back with control characters
//! made visible, and its exit code is this process's.
//!
//! With no remote added this costs one folder read.

use tandem_core::protocol::RunAt;
use tandem_core::remote::{self, Registry};
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// The commands that act on one session by name and go to its host, and
/// the argument that names it.
const ROUTED: &[(&str, &str)] = &[
    ("attach", "name"),
    ("logs", "name"),
    ("send", "name"),
    ("approve", "name"),
    ("deny", "name"),
    ("interrupt", "name"),
    ("stop", "name"),
    ("respawn", "name"),
    ("history", "name"),
    ("checkpoints", "name"),
    ("rewind", "name"),
    ("search", "session"),
    ("diff", "name"),
    ("rm", "name"),
    ("archive", "name"),
    ("restore", "name"),
    ("set", "name"),
    ("path", "name"),
];

/// Where a command goes.
pub(crate) enum Route {
    /// Here, as parsed.
    Local,
    /// Here, with the command line rewritten (`local:NAME` → `NAME`).
    Reparse(Vec<String>),
    /// To remote `host`: the command line for it, and the session's name.
    Remote { host: String, args: Vec<String>, name: String, command: String },
}

/// Decides where this process's command line goes.
///
/// # Errors
/// A name held on more than one host, or by this machine and a host.
pub(crate) fn route(cx: &Context) -> Result<Route, CliError> {
    let registry = Registry::new(&cx.paths);
    if !registry.any() {
        return Ok(Route::Local);
    }
    let argv: Vec<String> = std::env::args().collect();
    let Ok(matches) = crate::commands::examples::command().try_get_matches_from(&argv) else {
        return Ok(Route::Local);
    };
    let Some((command, sub)) = matches.subcommand() else { return Ok(Route::Local) };
    let Some((_, arg)) = ROUTED.iter().find(|(c, _)| *c == command) else { return Ok(Route::Local) };
    let Some(given) = sub.try_get_one::<String>(arg).ok().flatten().cloned() else { return Ok(Route::Local) };
    if let Some(("local", name)) = remote::split_address(&given) {
        return Ok(Route::Reparse(replace(&argv, &given, name)));
    }
    let Some((host, name)) = remote_session(cx, &given)? else { return Ok(Route::Local) };
    // The remote runs the command in that session's repository: this
    // machine's `--repo` means nothing there.
    let args = without_repo(&replace(&argv, &given, &name)[1..]);
    Ok(Route::Remote { host, args, name, command: command.to_owned() })
}

/// The host and name of the remote session `given` names: `HOST:NAME`,
/// or a NAME no local session has and exactly one host's last listing
/// has (the hosts are asked once when none has it). `None`: a local
/// session (or none at all: the local command says so).
///
/// # Errors
/// An unknown `HOST`; a name more than one host has.
pub(crate) fn remote_session(cx: &Context, given: &str) -> Result<Option<(String, String)>, CliError> {
    let registry = Registry::new(&cx.paths);
    if !registry.any() {
        return Ok(None);
    }
    match remote::split_address(given) {
        Some(("local", _)) => return Ok(None),
        Some((host, name)) => {
            registry.get(host).map_err(crate::commands::remote::fail)?;
            return Ok(Some((host.to_owned(), name.to_owned())));
        }
        None => {}
    }
    let here = cx.tandem()?.session_at(&cx.cwd, Some(given)).is_ok();
    // A session of this machine in another repository has the name too:
    // a bare name is this machine's word for it as much as a host's.
    let elsewhere = if here { Vec::new() } else { local_repos_holding(cx, given)? };
    let mut holders: Vec<String> = registry.holding(given).into_iter().map(|k| k.remote.name).collect();
    if !here && elsewhere.is_empty() && holders.is_empty() {
        // Not known anywhere yet: ask the hosts once.
        crate::commands::remote::ask_all(&cx.paths, crate::commands::remote::timeout(cx), false, false);
        holders = registry.holding(given).into_iter().map(|k| k.remote.name).collect();
    }
    match (here || !elsewhere.is_empty(), holders.as_slice()) {
        (_, []) => Ok(None),
        (false, [host]) => Ok(Some((host.clone(), given.to_owned()))),
        _ => {
            let shown = visible(given);
            let mut places: Vec<String> = holders.iter().map(|h| format!("`{h}:{shown}`")).collect();
            if here {
                places.insert(0, format!("`local:{shown}`"));
            }
            for (i, repo) in elsewhere.iter().enumerate() {
                places.insert(i, format!("`{}/{shown}` (this machine)", visible(repo)));
            }
            Err(CliError::user(format!(
                "more than one host has a session named `{shown}`; name the one you mean: {}",
                places.join(" or ")
            )))
        }
    }
}

/// The names (folder names, as `REPO/NAME` takes them) of this
/// machine's repositories that have a session called `name`.
///
/// # Errors
/// Store errors.
fn local_repos_holding(cx: &Context, name: &str) -> Result<Vec<String>, CliError> {
    if !cx.paths.database().exists() {
        return Ok(Vec::new());
    }
    let store = cx.store()?;
    let mut repos = Vec::new();
    for (id, _, root) in store.repos()? {
        if store.session_by_slug(id, name)?.is_some() {
            repos.push(tandem_core::session::lookup::repo_name(&root));
        }
    }
    Ok(repos)
}

/// `argv` with the one word `from` replaced by `to` (`--session=X` too).
fn replace(argv: &[String], from: &str, to: &str) -> Vec<String> {
    let mut done = false;
    argv.iter()
        .map(|a| {
            if !done && a == from {
                done = true;
                return to.to_owned();
            }
            if !done
                && let Some((flag, value)) = a.split_once('=')
                && flag.starts_with("--")
                && value == from
            {
                done = true;
                return format!("{flag}={to}");
            }
            a.clone()
        })
        .collect()
}

/// `args` without the global `--repo PATH` (or `--repo=PATH`).
fn without_repo(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == "--repo" {
            skip = true;
        } else if !a.starts_with("--repo=") {
            out.push(a.clone());
        }
    }
    out
}

/// Carries out a [`Route::Remote`].
///
/// # Errors
/// The host does not answer, has no such session, or the command fails
/// there (its exit code is then this process's).
pub(crate) fn run_remote(
    cx: &Context,
    host: &str,
    args: Vec<String>,
    name: &str,
    command: &str,
) -> Result<(), CliError> {
    if command == "attach" {
        return attach(cx, host, name);
    }
    crate::commands::remote::forward(cx, host, args, RunAt::Session { name: name.to_owned() }, Vec::new())
}

/// Attaches this terminal to session `name` on `host`: the host's attach
/// stream over the ssh channel, with the local attach's keys, resize and
/// detach.
pub(crate) fn attach(cx: &Context, host: &str, name: &str) -> Result<(), CliError> {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(CliError::user(format!(
            "tandem attach needs a terminal; run it in one, or read the output with `tandem logs {host}:{}`",
            visible(name)
        )));
    }
    let config = crate::context::user_config(&cx.paths);
    let key = crate::commands::attach::DetachKey::parse(&config.attach.detach_key)?;
    let (cols, rows) = crossterm::terminal::size()?;
    let link = crate::commands::remote::link(cx, host)?;
    let channel = link.open().map_err(crate::commands::remote::fail)?;
    let (reader, writer, child) = channel.attach(name, rows, cols).map_err(crate::commands::remote::fail)?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let child = std::sync::Mutex::new(child);
    let conn = crate::commands::attach::Conn {
        reader: Box::new(reader),
        writer: Box::new(writer),
        close: std::sync::Arc::new(move || {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }),
    };
    let result = crate::commands::attach::run_attached(&format!("{host}:{name}"), &key, conn, rows, cols);
    if let Ok(mut child) = child.lock() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_replaced_once_and_repo_dropped() {
        let argv: Vec<String> =
            ["tandem", "--repo", "x", "send", "gpu:fix", "gpu:fix"].iter().map(|s| (*s).to_owned()).collect();
        let out = replace(&argv, "gpu:fix", "fix");
        assert_eq!(out, ["tandem", "--repo", "x", "send", "fix", "gpu:fix"]);
        assert_eq!(without_repo(&out[1..]), ["send", "fix", "gpu:fix"]);
        let argv: Vec<String> = ["tandem", "search", "--session=gpu:a", "q"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(replace(&argv, "gpu:a", "a"), ["tandem", "search", "--session=a", "q"]);
    }
}
