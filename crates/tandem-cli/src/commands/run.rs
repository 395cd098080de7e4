//! `tandem run NAME -- CMD…` and `tandem shell NAME` (issue 19): a
//! command, or the user's shell, in a session's worktree with the
//! session's environment (what its agent gets: `[env]`, env files,
//! `--env`, and `TANDEM_SESSION`, `TANDEM_BRANCH`, `TANDEM_PORT`, …).

use std::process::Command;

use tandem_core::session::env::layered;
use tandem_core::store::Session;

use crate::context::Context;
use crate::error::CliError;

/// Run a command in a session's worktree, with the session's environment;
/// its exit code becomes tandem's
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tandem run fix-login -- cargo test
  tandem run fix-login -- git log --oneline -5
  tandem run fix-login -- sh -c 'echo $TANDEM_PORT'")]
pub struct RunArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Start your shell ($SHELL) in a session's worktree, with the session's
/// environment; `exit` comes back
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tandem shell fix-login
  SHELL=/bin/zsh tandem shell fix-login")]
pub struct ShellArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &RunArgs) -> Result<(), CliError> {
    let mut cmd = in_session(cx, args.name.as_deref(), &args.command[0])?;
    cmd.args(&args.command[1..]);
    pass_through(&mut cmd, &args.command[0])
}

pub fn shell(cx: &Context, args: &ShellArgs) -> Result<(), CliError> {
    let shell = std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".to_owned());
    let mut cmd = in_session(cx, args.name.as_deref(), &shell)?;
    pass_through(&mut cmd, &shell)
}

/// `program` set to run in the session's worktree with its environment.
fn in_session(cx: &Context, name: Option<&str>, program: &str) -> Result<Command, CliError> {
    let (repo, config, session) = cx.named(name)?;
    let env = session_env(cx, &repo.root, &config, &session);
    let mut cmd = Command::new(program);
    cmd.current_dir(&session.path).env_clear().envs(env);
    Ok(cmd)
}

fn session_env(
    cx: &Context,
    root: &std::path::Path,
    config: &tandem_core::config::Config,
    session: &Session,
) -> Vec<(String, String)> {
    let port = session.port.and_then(|p| u16::try_from(p).ok());
    // The session's environment as `new` recorded it (not this shell's);
    // its secrets, kept only in the supervisor's memory, are left out
    // (a session made before the record: this shell's).
    let recorded = cx.store().ok().and_then(|store| store.recorded_env(&session.id).ok().flatten());
    let caller = match recorded {
        Some(recorded) => recorded.vars,
        None => crate::context::agent_env(),
    };
    layered(&caller, config, session, &[], root, port).vars
}

/// Runs `cmd` to its end and exits with its code (128 + the signal's
/// number when a signal ended it), as a shell does.
fn pass_through(cmd: &mut Command, program: &str) -> Result<(), CliError> {
    let status = cmd.status().map_err(|e| {
        CliError::Failed(
            tandem_core::error::Failure::new(
                tandem_core::error::ErrorKind::NotFound,
                format!("cannot run `{}`: {e}", tandem_core::text::visible(program)),
            )
            .hinted("check the command's name and your PATH"),
        )
    })?;
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
