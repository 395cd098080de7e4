use std::process::Stdio;

use tandem_core::git;
use tandem_core::ship::{self, Against, IntentIndex};

use crate::context::Context;
use crate::error::CliError;

/// Show what a session changed: against its base's merge-base, with
/// uncommitted and untracked work
///
/// Colour and pager are git's own (`git diff`).
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// Only the summary of changed files and lines
    #[arg(long, conflicts_with_all = ["name_only", "json"])]
    stat: bool,
    /// Only the changed files' names
    #[arg(long, conflicts_with = "json")]
    name_only: bool,
    /// `base` (the ref it branched from), `remote` (the remote's default
    /// branch), or any commit-ish
    #[arg(long, default_value = "base", value_name = "base|remote|REF")]
    against: String,
    /// Only the uncommitted work (against HEAD)
    #[arg(long, conflicts_with = "against")]
    uncommitted: bool,
    /// Per-file counts as JSON
    #[arg(long)]
    json: bool,
    /// What the agent's turn that made checkpoint N changed (`tandem
    /// checkpoints NAME` lists them)
    #[arg(long, value_name = "N", conflicts_with_all = ["against", "uncommitted"])]
    checkpoint: Option<u32>,
    /// With `--checkpoint N`: from checkpoint N to checkpoint M instead
    #[arg(long, value_name = "M", requires = "checkpoint")]
    to: Option<u32>,
}

pub fn run(cx: &Context, args: &DiffArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let user = <CliError as From<ship::ShipError>>::from;
    if let Some(n) = args.checkpoint {
        let store = cx.tandem()?.store()?;
        let (from, to) = tandem_core::checkpoints::diff_range(&store, &session, n, args.to)
            .map_err(tandem_core::client::ClientError::from)?;
        if args.json {
            let report = ship::diff::trees_report(&session, &from, &to, None).map_err(user)?;
            println!("{}", serde_json::to_string_pretty(&report).map_err(std::io::Error::from)?);
            return Ok(());
        }
        let dir = ship::worktree(&session).map_err(user)?.to_owned();
        return git_diff(&dir, args, &[&from, &to]);
    }
    if args.json {
        let report =
            ship::diff::report(&session, &Against::parse(&args.against), args.uncommitted, None).map_err(user)?;
        println!("{}", serde_json::to_string_pretty(&report).map_err(std::io::Error::from)?);
        return Ok(());
    }
    let dir = ship::worktree(&session).map_err(user)?.to_owned();
    let from = if args.uncommitted {
        "HEAD".to_owned()
    } else {
        ship::diff_from(&session, &Against::parse(&args.against)).map_err(user)?
    };
    let index = IntentIndex::new(&dir).map_err(user)?;
    git_diff_with(&dir, args, &[&from], Some(index.path()))
}

fn git_diff(dir: &std::path::Path, args: &DiffArgs, revs: &[&str]) -> Result<(), CliError> {
    git_diff_with(dir, args, revs, None)
}

/// `git diff -M REVS…` on this terminal (git decides colour and the
/// pager), through `index` when given.
fn git_diff_with(
    dir: &std::path::Path,
    args: &DiffArgs,
    revs: &[&str],
    index: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let mut cmd = git::command(dir);
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    cmd.env_remove("LC_ALL").arg("diff").arg("-M");
    if args.stat {
        cmd.arg("--stat");
    }
    if args.name_only {
        cmd.arg("--name-only");
    }
    cmd.args(revs).arg("--").stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let status = cmd.status()?;
    if status.success() { Ok(()) } else { Err(CliError::user("`git diff` failed; see its message above")) }
}
