use std::io::Write;

use tandem_core::client::RemoveOptions;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Remove a session: stop its agent, remove its worktree and branch
///
/// Refuses when uncommitted or untracked changes, or commits in neither
/// the base nor any remote branch, would be lost. With --force it first
/// stores all of it under refs/tandem/archive/<name>/<unix-time>.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// Remove even with unsaved work (a snapshot ref is kept)
    #[arg(short, long)]
    force: bool,
    /// Return only once the branch is deleted and git has pruned the
    /// worktree (by default that follows a few milliseconds after rm
    /// returns; other tandem commands on the repository wait for it)
    #[arg(long)]
    wait: bool,
    /// Delete the session's history too (kept by default, for `tandem
    /// history` and `tandem search`)
    #[arg(long)]
    purge: bool,
}

pub fn run(cx: &Context, args: &RmArgs) -> Result<(), CliError> {
    // The supervisor finds the session, so this process runs no git.
    let options = RemoveOptions { force: args.force, wait: args.wait, purge: args.purge };
    let tandem = cx.tandem()?;
    // No name: the session whose worktree this is, found here (no git
    // runs), then named to the supervisor from its repository.
    let (cwd, name) = match &args.name {
        Some(name) => (cx.cwd.clone(), name.clone()),
        None => {
            let session = tandem.resolve(&cx.cwd, None)?;
            let root = cx.store()?.repo_root(session.repo_id)?.unwrap_or_else(|| cx.cwd.clone());
            (root, session.slug)
        }
    };
    let (report, notes) = tandem.remove(&cwd, &name, options, crate::context::agent_env())?;
    {
        for note in &notes {
            eprintln!("note: {}", visible(note));
        }
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "removed session {} (worktree {}, branch {})",
            report.slug,
            visible(&report.path.display().to_string()),
            visible(&report.branch)
        )?;
        if let Some(archive) = report.archive_ref {
            writeln!(out, "snapshot kept at {}", visible(&archive))?;
            writeln!(out, "restore it with: git switch -c {} {}", visible(&report.branch), visible(&archive))?;
        }
    }
    Ok(())
}
