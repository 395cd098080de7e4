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
}

pub fn run(cx: &Context, args: &DiffArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let user = <CliError as From<ship::ShipError>>::from;
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
    let mut cmd = git::command(&dir);
    cmd.env("GIT_INDEX_FILE", index.path());
    // Git decides colour and the pager, as for `git diff` on this terminal.
    cmd.env_remove("LC_ALL").arg("diff").arg("-M");
    if args.stat {
        cmd.arg("--stat");
    }
    if args.name_only {
        cmd.arg("--name-only");
    }
    cmd.arg(&from).arg("--").stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let status = cmd.status()?;
    if status.success() { Ok(()) } else { Err(CliError::user("`git diff` failed; see its message above")) }
}
