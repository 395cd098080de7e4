use std::io::{IsTerminal, Write};

use tandem_core::protocol::{CreateRequest, Request, Response};

use crate::commands::attach;
use crate::context::Context;
use crate::error::CliError;

/// Start an agent in a new session: a worktree, a branch and a host
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// Session name, also its branch and folder name (default: a readable
    /// unique name like `sparkling-nebula`)
    name: Option<String>,
    /// Free-text title shown in `tandem list`
    #[arg(short, long)]
    title: Option<String>,
    /// First prompt for the agent
    #[arg(short, long)]
    prompt: Option<String>,
    /// `claude`, `shell`, or any command line (default: claude when
    /// installed, else shell)
    #[arg(short, long)]
    agent: Option<String>,
    /// Commit-ish to branch from (default: the current HEAD)
    #[arg(short, long)]
    base: Option<String>,
    /// Return at once instead of attaching
    #[arg(long)]
    bg: bool,
}

pub fn run(cx: &Context, args: &NewArgs) -> Result<(), CliError> {
    // Cheap checks first, so bad input never starts a supervisor.
    if let Some(name) = &args.name {
        tandem_core::session::names::validate(name)?;
    }
    let (_, config) = cx.repo()?;
    let interactive = !args.bg && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (cols, rows) = if interactive { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let request = CreateRequest {
        cwd: cx.cwd.clone(),
        name: args.name.clone(),
        title: args.title.clone(),
        agent: args.agent.clone(),
        prompt: args.prompt.clone(),
        base: args.base.clone(),
        env: std::env::vars().collect(),
        rows,
        cols,
    };
    let Response::Created { session } = cx.supervisor()?.request(&Request::Create(request))? else {
        return Err(CliError::Internal("the supervisor answered create with something else".into()));
    };
    if !interactive {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}\t{}", session.slug, session.path.display())?;
        if !args.bg {
            eprintln!("not attaching: no terminal; run `tandem attach {}` from one", session.slug);
        }
        return Ok(());
    }
    eprintln!("created session {} on branch {} in {}", session.slug, session.branch, session.path.display());
    attach::attach(cx, &session, &config)
}
