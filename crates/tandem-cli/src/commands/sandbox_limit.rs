use std::os::unix::process::CommandExt;

use crate::error::CliError;

/// The first step of a sandbox with limits: put this process under the
/// session's caps (see `tandem_core::limits`), then exec the sandbox; or,
/// with --remove, remove a session's cgroup once its agent has ended
#[derive(clap::Args, Debug)]
pub struct SandboxLimitArgs {
    /// The session's cgroup: `tandem-<session id>`.
    #[arg(long, value_name = "NAME", required_unless_present = "remove")]
    name: Option<String>,
    /// Processes (and threads) at once.
    #[arg(long, value_name = "N")]
    max_processes: Option<u64>,
    /// Memory, in bytes.
    #[arg(long, value_name = "BYTES")]
    max_memory: Option<u64>,
    /// Remove cgroup NAME (empty by now) instead of running anything.
    #[arg(long, value_name = "NAME", conflicts_with = "name")]
    remove: Option<String>,
    /// The command to run under the caps.
    #[arg(last = true)]
    argv: Vec<String>,
}

pub fn run(args: &SandboxLimitArgs) -> Result<(), CliError> {
    if let Some(name) = &args.remove {
        tandem_core::limits::remove(name);
        return Ok(());
    }
    let name = args.name.as_deref().unwrap_or("tandem-unnamed");
    let (prefix, report) = tandem_core::limits::enter(name, args.max_processes, args.max_memory);
    for (cap, held) in [("processes", &report.processes), ("memory", &report.memory)] {
        if let Some(Err(why)) = held {
            // Said by `tandem doctor`; not on the agent's terminal.
            tracing::debug!(cap, why = why.as_str(), "a sandbox limit is not in force");
        }
    }
    let argv: Vec<&String> = prefix.iter().chain(&args.argv).collect();
    let (program, rest) =
        argv.split_first().ok_or_else(|| CliError::user("tandem sandbox-limit: no command to run after --"))?;
    let error = std::process::Command::new(program).args(rest).exec();
    Err(CliError::user(format!("tandem sandbox-limit: cannot run {program}: {error}")))
}
