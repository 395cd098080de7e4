//! `tandem remote`: the other machines tandem reaches over SSH (issue
//! 21), and what every other command uses to reach them: the rows of
//! every remote at once, and a session command carried out on the host
//! that has the session.

use std::io::Write;
use std::time::Duration;

use tandem_core::protocol::{RemoteReply, RemoteRequest, RunAt};
use tandem_core::remote::ssh::Link;
use tandem_core::remote::{self, Known, Registry, Remote, RemoteError};
use tandem_core::text::visible;

use crate::context::{Context, note};
use crate::error::CliError;

/// Add, list, check and remove remote hosts: other machines whose own
/// tandem runs sessions, reached through your ssh
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(clap::Subcommand, Debug)]
enum RemoteCommand {
    /// Add a remote host: NAME is what tandem calls it (`--on NAME`,
    /// `NAME:SESSION`), DESTINATION anything `ssh` accepts (`user@host`,
    /// an alias of ~/.ssh/config, `ssh://host:port`)
    Add {
        /// What tandem calls it: 1 to 31 of a-z, 0-9 and `-`
        name: String,
        /// Where ssh goes: `user@host`, an alias, `ssh://[user@]host:port`
        destination: String,
        /// The tandem to run there [default: `tandem`, ~/.local/bin first]
        #[arg(long, value_name = "PATH")]
        tandem: Option<String>,
    },
    /// The remote hosts: reachable or not, their tandem, sessions and load
    #[command(alias = "ls")]
    List {
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Forget a remote host (its sessions keep running there)
    Rm {
        /// The remote's name (`tandem remote list`)
        name: String,
    },
    /// Check a remote host step by step: ssh, tandem, protocol, git,
    /// whether its supervisor outlives your logout, disk
    Doctor {
        /// The remote's name (`tandem remote list`)
        name: String,
    },
    /// Copy this tandem to the remote's ~/.local/bin (same architecture)
    Install {
        /// The remote's name (`tandem remote list`)
        name: String,
    },
}

pub fn run(cx: &Context, args: &RemoteArgs) -> Result<(), CliError> {
    match &args.command {
        RemoteCommand::Add { name, destination, tandem } => add(cx, name, destination, tandem.clone()),
        RemoteCommand::List { json } => list(cx, *json),
        RemoteCommand::Rm { name } => {
            let known = registry(cx).remove(name).map_err(fail)?;
            let sessions = known.rows.len();
            println!("removed remote {name}");
            if sessions > 0 {
                note!(
                    "its {sessions} session(s) keep running on {}; `tandem remote add {name} {}` shows them again",
                    visible(&known.remote.destination),
                    visible(&known.remote.destination)
                );
            }
            Ok(())
        }
        RemoteCommand::Doctor { name } => doctor(cx, name),
        RemoteCommand::Install { name } => install(cx, name),
    }
}

/// A remote error as the CLI reports it.
pub(crate) fn fail(e: RemoteError) -> CliError {
    CliError::Failed(e.failure())
}

pub(crate) fn registry(cx: &Context) -> Registry {
    Registry::new(&cx.paths)
}

/// The timeout of an exchange with a remote (`remote.timeout_secs`).
pub(crate) fn timeout(cx: &Context) -> Duration {
    remote::timeout(Some(crate::context::user_config(&cx.paths).remote.timeout_secs))
}

/// The link to remote `name`.
pub(crate) fn link(cx: &Context, name: &str) -> Result<Link, CliError> {
    let known = registry(cx).get(name).map_err(fail)?;
    Link::new(&cx.paths, known.remote, timeout(cx)).map_err(fail)
}

fn add(cx: &Context, name: &str, destination: &str, tandem: Option<String>) -> Result<(), CliError> {
    remote::check_name(name).map_err(fail)?;
    let registry = registry(cx);
    if let Ok(old) = registry.get(name) {
        return Err(fail(RemoteError::Exists { name: old.remote.name, destination: old.remote.destination }));
    }
    let remote = Remote {
        name: name.to_owned(),
        destination: destination.to_owned(),
        tandem,
        added_at: tandem_core::unix_now(),
    };
    let link = Link::new(&cx.paths, remote.clone(), timeout(cx)).map_err(fail)?;
    // ssh itself must work: an unknown alias, a refused key or a host
    // that does not answer adds nothing.
    link.exec("true", None, link.timeout).map_err(fail)?;
    let mut known =
        Known { remote, last_seen: Some(tandem_core::unix_now()), last_error: None, facts: None, rows: Vec::new() };
    let facts = link.ask(&RemoteRequest::Facts);
    match &facts {
        Ok(RemoteReply::Facts(facts)) => known.facts = Some(facts.clone()),
        Ok(_) => {}
        Err(e @ (RemoteError::NoTandem { .. } | RemoteError::Incompatible { .. })) => {
            known.last_error = Some(e.to_string());
        }
        Err(e) => return Err(fail(clone_error(e))),
    }
    registry.add(&known).map_err(fail)?;
    println!("added remote {name} ({})", visible(destination));
    match facts {
        Ok(RemoteReply::Facts(f)) => note!("it runs tandem {} with {} session(s)", visible(&f.tandem), f.sessions),
        Err(e) => note!("{}; `tandem remote install {name}` copies this tandem there", visible(&e.to_string())),
        Ok(_) => {}
    }
    Ok(())
}

fn clone_error(e: &RemoteError) -> RemoteError {
    match e {
        RemoteError::Unreachable { name, why } => RemoteError::Unreachable { name: name.clone(), why: why.clone() },
        other => RemoteError::Protocol { name: String::new(), what: other.to_string() },
    }
}

pub(crate) use tandem_core::remote::{ask_all, remote_rows};

fn list(cx: &Context, json: bool) -> Result<(), CliError> {
    let answers = ask_all(&cx.paths, timeout(cx), false, true);
    if json {
        let items: Vec<serde_json::Value> = answers
            .iter()
            .map(|a| {
                let (ok, facts) = match &a.result {
                    Ok((_, facts)) => (true, Some(facts)),
                    Err(_) => (false, None),
                };
                serde_json::json!({
                    "name": a.known.remote.name,
                    "destination": a.known.remote.destination,
                    "reachable": ok,
                    "error": a.result.as_ref().err().map(ToString::to_string),
                    "tandem": facts.map(|f| &f.tandem),
                    "sessions": facts.map(|f| f.sessions),
                    "load": facts.map(|f| &f.load),
                    "last_seen": a.known.last_seen,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items).map_err(|e| CliError::Internal(e.to_string()))?);
        return Ok(());
    }
    if answers.is_empty() {
        note!("no remote hosts; add one with `tandem remote add NAME user@host`");
        return Ok(());
    }
    let mut table = vec![["NAME", "DESTINATION", "STATUS", "TANDEM", "SESSIONS", "LOAD"].map(str::to_owned).to_vec()];
    for a in &answers {
        let (status, tandem, sessions, load) = match &a.result {
            Ok((_, f)) => ("reachable".to_owned(), f.tandem.clone(), f.sessions.to_string(), f.load.clone()),
            Err(e) => (short_error(e), "-".into(), "-".into(), "-".into()),
        };
        table.push(vec![
            a.known.remote.name.clone(),
            a.known.remote.destination.clone(),
            status,
            tandem,
            sessions,
            load,
        ]);
    }
    let table: Vec<Vec<String>> =
        table.into_iter().map(|row| row.into_iter().map(|c| visible(&c).into_owned()).collect()).collect();
    crate::commands::list::write_columns(&mut std::io::stdout().lock(), &table)?;
    Ok(())
}

fn short_error(e: &RemoteError) -> String {
    match e {
        RemoteError::Unreachable { why, .. } => format!("unreachable: {why}"),
        RemoteError::NoTandem { .. } => "no tandem".to_owned(),
        RemoteError::Incompatible { theirs, .. } => format!("incompatible tandem {theirs}"),
        other => other.to_string(),
    }
}

fn doctor(cx: &Context, name: &str) -> Result<(), CliError> {
    let link = link(cx, name)?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    let mut line = |status: &str, check: &str, detail: &str, out: &mut dyn Write| {
        failed |= status == "FAIL";
        writeln!(out, "{status:<4} {check:<9} {}", visible(detail))
    };
    match link.exec("uname -sm", None, link.timeout) {
        Ok((stdout, _, _)) => line(
            "ok",
            "ssh",
            &format!("{} answers ({})", link.remote.destination, String::from_utf8_lossy(&stdout).trim()),
            &mut out,
        )?,
        Err(e) => {
            line("FAIL", "ssh", &e.to_string(), &mut out)?;
            drop(out);
            return Err(CliError::Failed(
                e.failure().hinted(format!("check `ssh {}` works without a password prompt", link.remote.destination)),
            ));
        }
    }
    let facts = match link.ask(&RemoteRequest::Facts) {
        Ok(RemoteReply::Facts(f)) => {
            line("ok", "tandem", &format!("tandem {} found", f.tandem), &mut out)?;
            line(
                "ok",
                "protocol",
                &format!("remote protocol {} on both ends", tandem_core::protocol::REMOTE_PROTOCOL_VERSION),
                &mut out,
            )?;
            Some(f)
        }
        Ok(_) => None,
        Err(e @ RemoteError::NoTandem { .. }) => {
            line("FAIL", "tandem", &format!("{e}; run `tandem remote install {name}`"), &mut out)?;
            None
        }
        Err(e @ RemoteError::Incompatible { .. }) => {
            line("ok", "tandem", "found", &mut out)?;
            line("FAIL", "protocol", &format!("{e}; run `tandem remote install {name}`"), &mut out)?;
            None
        }
        Err(e) => {
            line("FAIL", "tandem", &e.to_string(), &mut out)?;
            None
        }
    };
    if let Some(f) = facts {
        let git_ok = f.git.starts_with("git version");
        line(if git_ok { "ok" } else { "FAIL" }, "git", &f.git, &mut out)?;
        match f.survives_logout.as_str() {
            "systemd" => {
                line("ok", "linger", "the supervisor runs as a systemd user service and lingering is on", &mut out)?
            }
            "systemd-no-linger" => line(
                "warn",
                "linger",
                "lingering is off: logging out of that machine ends its supervisor and sessions; turn it on with `loginctl enable-linger $USER` there",
                &mut out,
            )?,
            _ => line(
                "ok",
                "linger",
                "no systemd user manager: the supervisor runs in its own session, outside the login's",
                &mut out,
            )?,
        }
        let gib = f.disk_free as f64 / f64::from(1u32 << 30);
        let status = if f.disk_free < (1 << 30) { "warn" } else { "ok" };
        line(status, "disk", &format!("{gib:.1} GiB free for tandem's state"), &mut out)?;
        line("ok", "sessions", &format!("{} session(s), load {}, arch {}", f.sessions, f.load, f.arch), &mut out)?;
        registry(cx).seen(name, None, Some(f));
    }
    drop(out);
    if failed {
        return Err(CliError::user(format!("remote {name} is not ready: fix the FAIL lines above")));
    }
    Ok(())
}

fn install(cx: &Context, name: &str) -> Result<(), CliError> {
    let link = link(cx, name)?;
    let (machine, _, _) = link.exec("uname -m", None, link.timeout).map_err(fail)?;
    let machine = String::from_utf8_lossy(&machine).trim().to_owned();
    let ours = std::env::consts::ARCH;
    let same = machine == ours || (machine == "arm64" && ours == "aarch64");
    let version = env!("CARGO_PKG_VERSION");
    if !same || std::env::consts::OS != "linux" {
        return Err(CliError::user(format!(
            "remote {name} is a {} machine and this tandem is built for {ours} {}; install tandem {version} there yourself (`cargo install --locked --git <tandem's repository> tandem-cli`, into ~/.local/bin)",
            visible(&machine),
            std::env::consts::OS
        )));
    }
    let exe = std::env::current_exe()?;
    let mut file = std::fs::File::open(&exe)?;
    // Written next to the old one, then renamed over it: a proxy running
    // the old binary keeps its file.
    let script = "set -e; mkdir -p \"$HOME/.local/bin\"; t=\"$HOME/.local/bin/.tandem.$$\"; cat > \"$t\"; chmod 755 \"$t\"; mv -f \"$t\" \"$HOME/.local/bin/tandem\"";
    let (_, stderr, code) = link.exec(script, Some(&mut file), Duration::from_secs(600)).map_err(fail)?;
    if code != Some(0) {
        return Err(CliError::user(format!("copying tandem to {name} failed: {}", visible(stderr.trim()))));
    }
    println!("installed tandem {version} on {name} (~/.local/bin/tandem)");
    if let Ok(RemoteReply::Facts(f)) = link.ask(&RemoteRequest::Facts) {
        registry(cx).seen(name, None, Some(f));
    }
    Ok(())
}

/// Runs `tandem ARGS` on remote `host` in the repository of its session
/// `session` (or at `at`), printing its output here with control
/// characters made visible, and exits with its code.
pub(crate) fn forward(
    cx: &Context,
    host: &str,
    args: Vec<String>,
    at: RunAt,
    env_files: Vec<Vec<u8>>,
) -> Result<(), CliError> {
    let link = link(cx, host)?;
    let channel = link.open().map_err(fail)?;
    let mut out = Escaped(std::io::stdout().lock());
    let mut err = std::io::stderr();
    let code = channel
        .run(args, at, env_files, &mut out, &mut |text| {
            let _ = err.write_all(escape_keep_lines(text).as_bytes());
        })
        .map_err(fail)?;
    let _ = out.0.flush();
    match code {
        Some(0) => Ok(()),
        Some(code) => std::process::exit(code),
        None => std::process::exit(1),
    }
}

/// `text` with control characters made visible, newlines and tabs kept
/// (they only move the cursor: tables print as they do there).
pub(crate) fn escape_keep_lines(text: &str) -> String {
    let cells = |line: &str| line.split('\t').map(|cell| visible(cell).into_owned()).collect::<Vec<_>>().join("\t");
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(body) => format!("{}\n", cells(body)),
            None => cells(line),
        })
        .collect()
}

/// A writer that escapes control characters in the (UTF-8) text written
/// through it, keeping newlines; a chunk that ends inside a character
/// waits for the rest.
struct Escaped<W: Write>(W);

impl<W: Write> Write for Escaped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(escape_keep_lines(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn remote_output_keeps_lines_and_tabs_and_shows_the_rest() {
        let text = "a\tb\n\x1b]0;title\x07c\r\n";
        assert_eq!(super::escape_keep_lines(text), "a\tb\n\\e]0;title\\x07c\\r\n");
    }
}
