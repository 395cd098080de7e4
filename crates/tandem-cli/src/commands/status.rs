//! `tandem status`: one short line for tmux's status line and shell
//! prompts. It asks a running supervisor for the counts, else reads the
//! store; it never starts one, so it answers in a few milliseconds (`tandem-bench status` measures it
//! against `tandem list`).
//!
//! Remote hosts' sessions (issue 21) count too, as their hosts last
//! answered (`tandem list`, the agent view and the dashboard keep that in
//! the registry): `status` never waits on ssh. A session that waits on
//! the user there is named `HOST:NAME`; those of a host whose last
//! exchange failed count as `unreachable`.

use std::io::Write;

use tandem_core::config::Config;
use tandem_core::rows::{self, Group};
use tandem_core::store::Store;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// One line for a status bar or a prompt: sessions by state, and the
/// first one that needs input
#[derive(clap::Args, Debug, Default)]
pub struct StatusArgs {
    /// Only the sessions of the repository of the current directory
    /// (else those of every repository)
    #[arg(long)]
    here: bool,
    /// Print a JSON object instead of the line
    #[arg(long)]
    json: bool,
}

/// What `tandem status` counts.
#[derive(serde::Serialize, Default)]
struct Status {
    /// Sessions by group (`needs input`, `running`, `idle`, `done`), in
    /// display order, empty groups left out.
    counts: Vec<Count>,
    total: usize,
    /// How many of them are on remote hosts.
    remote: usize,
    /// The first session (oldest) that waits on the user.
    needs_input: Option<Waiting>,
}

#[derive(serde::Serialize)]
struct Count {
    state: String,
    count: usize,
}

#[derive(serde::Serialize)]
struct Waiting {
    /// Its name; `HOST:NAME` on a remote host.
    name: String,
    asking: Option<String>,
}

pub fn run(cx: &Context, args: &StatusArgs) -> Result<(), CliError> {
    let status = status(cx, args.here)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &status).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", line(&status))?;
    }
    Ok(())
}

/// The counts: this machine's from a running supervisor of this version
/// (which holds the store open and finds the repository), else from the
/// store; the remote hosts' from the registry. No supervisor is started.
fn status(cx: &Context, here: bool) -> Result<Status, CliError> {
    // Remote hosts' sessions: this machine's view of every repository
    // only (a remote row's repository is a path on its host).
    let remote = if here { Vec::new() } else { remote_rows(cx) };
    let asked = cx.tandem().ok().and_then(|t| t.tally_in(here.then_some(cx.cwd.as_path())).ok().flatten());
    let local = match asked {
        Some(tally) => tally,
        None => local_tally(cx, here)?,
    };
    let mut groups = local.groups;
    let mut status =
        Status { needs_input: local.needs_input.map(|(name, asking)| Waiting { name, asking }), ..Status::default() };
    let mut unreachable = 0;
    for row in &remote {
        if row.state == "unreachable" {
            unreachable += 1;
            continue;
        }
        let group = row.group();
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, n)) => *n += 1,
            None => groups.push((group, 1)),
        }
        if group == Group::NeedsInput && status.needs_input.is_none() {
            let name = format!("{}:{}", row.host.as_deref().unwrap_or_default(), row.name);
            status.needs_input = Some(Waiting { name, asking: row.asking.clone() });
        }
    }
    groups.sort_by_key(|(g, _)| *g);
    status.total = local.total + remote.len();
    status.remote = remote.len();
    status.counts = groups.into_iter().map(|(g, count)| Count { state: g.title().to_lowercase(), count }).collect();
    if unreachable > 0 {
        status.counts.push(Count { state: "unreachable".to_owned(), count: unreachable });
    }
    Ok(status)
}

/// This machine's counts read from the store (none when it does not
/// exist yet), with the user's `supervisor.quiet_secs`.
fn local_tally(cx: &Context, here: bool) -> Result<rows::Tally, CliError> {
    let repo = if here { Some(cx.repo()?.0) } else { None };
    let database = cx.paths.database();
    if !database.exists() {
        return Ok(rows::Tally::default());
    }
    let store = Store::open(&database)?;
    let sessions = match &repo {
        Some(repo) => match store.find_repo(&repo.common_dir)? {
            Some(id) => store.sessions(id)?,
            None => Vec::new(),
        },
        None => store.sessions_in(&rows::TALLIED)?,
    };
    drop(store);
    let quiet = Config::load(&cx.paths.config_dir.join("config.toml"), None)
        .map_or_else(|_| Config::defaults().supervisor.quiet_secs, |c| c.supervisor.quiet_secs);
    Ok(rows::tally(&cx.paths, &sessions, tandem_core::unix_now(), quiet))
}

/// Every remote host's sessions as it last answered, archived ones left
/// out; `unreachable` (with what they were) when its last exchange
/// failed. Reads the registry only.
fn remote_rows(cx: &Context) -> Vec<rows::SessionRow> {
    let registry = tandem_core::remote::Registry::new(&cx.paths);
    if !registry.any() {
        return Vec::new();
    }
    registry
        .list()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|known| {
            if known.last_error.is_some() {
                known.unreachable_rows()
            } else {
                let host = known.remote.name.clone();
                known.rows.into_iter().map(|r| rows::SessionRow { host: Some(host.clone()), ..r }).collect()
            }
        })
        .filter(|r| r.state != "archived")
        .collect()
}

/// `1 needs input (alpha: Bash: cargo test), 2 running, 1 idle`; `no
/// sessions`.
fn line(status: &Status) -> String {
    if status.total == 0 {
        return "no sessions".to_owned();
    }
    let parts: Vec<String> = status
        .counts
        .iter()
        .map(|c| {
            let mut part = format!("{} {}", c.count, c.state);
            if c.state == Group::NeedsInput.title().to_lowercase()
                && let Some(w) = &status.needs_input
            {
                match &w.asking {
                    Some(asking) => part.push_str(&format!(" ({}: {})", w.name, rows::truncate(asking, 40))),
                    None => part.push_str(&format!(" ({})", w.name)),
                }
            }
            part
        })
        .collect();
    visible(&parts.join(", ")).into_owned()
}
