use std::io::{BufRead, IsTerminal, Write};

use tandem_core::config::Config;
use tandem_core::repo::Repository;
use tandem_core::session::SessionError;
use tandem_core::session::repo_hooks::{self as hooks, Hook};
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Show or approve the hook commands this repository's .tandem.toml declares
///
/// Commands from a repository run only after you approved their exact
/// text; a changed command needs a new approval.
#[derive(clap::Args, Debug)]
pub struct HooksArgs {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// List every hook command, where it comes from, and whether it may run
    Show,
    /// Approve this repository's hook commands as they are now
    Approve {
        /// Approve without asking (the commands are still printed)
        #[arg(short, long)]
        yes: bool,
    },
}

pub fn run(cx: &Context, args: &HooksArgs) -> Result<(), CliError> {
    let (repo, config) = cx.repo()?;
    let store = cx.store()?;
    match args.action {
        None | Some(Action::Show) => {
            let all = hooks::all(&repo, &config);
            let mut out = std::io::stdout().lock();
            if all.is_empty() {
                writeln!(out, "no hook commands configured")?;
            }
            for hook in all {
                let status = match (hook.from_repo, hooks::may_run(&store, &hook)?) {
                    (false, _) => "yours",
                    (true, true) => "approved",
                    (true, false) => "NOT APPROVED",
                };
                writeln!(out, "{:<16} {:<13} {}", hook.kind, status, visible(&hook.command))?;
            }
            Ok(())
        }
        Some(Action::Approve { yes }) => {
            let pending = hooks::unapproved(&store, &repo, &config)?;
            if pending.is_empty() {
                println!("nothing to approve: every hook command here is approved or your own");
                return Ok(());
            }
            print_hooks(&pending);
            if !yes && !confirm("Approve these commands?")? {
                return Err(CliError::user("not approved; nothing changed"));
            }
            hooks::approve(&store, &repo, &pending)?;
            println!("approved {} command(s)", pending.len());
            Ok(())
        }
    }
}

/// Before a create: asks on a terminal to approve the repository's new
/// hook commands; refuses with a hint otherwise.
pub fn ensure_approved(cx: &Context, repo: &Repository, config: &Config) -> Result<(), CliError> {
    let store = cx.store()?;
    let pending = hooks::unapproved(&store, repo, config)?;
    if pending.is_empty() {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(SessionError::HooksNotApproved { count: pending.len() }.into());
    }
    eprintln!("{} asks to run these commands:", visible(&repo.root.join(".tandem.toml").display().to_string()));
    print_hooks(&pending);
    if !confirm("Run them (now and in future sessions, until they change)?")? {
        return Err(CliError::user("hook commands not approved; nothing was created"));
    }
    hooks::approve(&store, repo, &pending)?;
    Ok(())
}

/// Each command on a line of its own, exactly as it will run: control
/// characters visible, so nothing in it can erase or rewrite the line.
fn print_hooks(hooks: &[Hook]) {
    for hook in hooks {
        eprintln!("  [{}] {}", hook.kind, visible(&hook.command));
    }
}

fn confirm(question: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::user("cannot ask without a terminal; pass --yes to approve"));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
