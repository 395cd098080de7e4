use crate::context::Context;
use crate::error::CliError;

/// Drop archive snapshots (refs/tandem/archive/), tips kept by sync
/// (refs/tandem/sync/), removed worktrees in the trash and the
/// checkpoints of removed sessions that are older than a limit, and only
/// those
///
/// The snapshot and checkpoints of a session that is still archived are
/// kept, and so is every ref another tandem state folder (another
/// TANDEM_HOME) made. Also tidies the worktree pool whatever its age:
/// pooled worktrees a killed supervisor left half made, and those beyond
/// `[worktrees] pool` (all of them when it is 0); one somebody wrote in is
/// left alone.
#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// Age limit in days
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    older_than: u64,
}

pub fn run(cx: &Context, args: &GcArgs) -> Result<(), CliError> {
    cx.repo()?;
    let report = cx.tandem()?.gc(&cx.cwd, args.older_than.saturating_mul(86_400))?;
    for name in &report.refs {
        println!("dropped {}", tandem_core::text::visible(name));
    }
    for name in &report.kept {
        println!("kept {} (its session is archived)", tandem_core::text::visible(name));
    }
    if !report.others.is_empty() {
        println!(
            "left {} old ref(s) that another tandem state folder made (another TANDEM_HOME); its own `tandem gc` drops them",
            report.others.len()
        );
    }
    for path in &report.trash {
        println!("deleted {}", path.display());
    }
    for path in &report.pool {
        println!("removed pooled worktree {} (not ready, or beyond `[worktrees] pool`)", path.display());
    }
    for what in &report.checkpoints {
        println!("dropped the checkpoints of removed session {}", tandem_core::text::visible(what));
    }
    println!(
        "{} snapshot(s) and {} trash folder(s) older than {} days dropped",
        report.refs.len(),
        report.trash.len(),
        args.older_than
    );
    Ok(())
}
