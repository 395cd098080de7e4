use std::io::{IsTerminal, Write};

use tandem_core::client::Created;
use tandem_core::protocol::CreateRequest;

use crate::commands::attach;
use crate::context::Context;
use crate::error::CliError;

/// Start an agent in a new session: a worktree, a branch and a host
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// Session name; its slug (lowercase, `-` for other characters) names
    /// the folder and, after `branch.prefix`, the branch (default: a
    /// readable unique name like `sparkling-nebula`)
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
    /// Where to branch from: `fresh` (fetch, then the remote's default
    /// branch), `head`, or any commit-ish (default: `base.default`, fresh)
    #[arg(short, long)]
    base: Option<String>,
    /// Use this branch: checked out as it is when it exists, else created
    #[arg(long)]
    branch: Option<String>,
    /// Check out pull request N (fetches refs/pull/N/head into `pr-N`)
    #[arg(long, value_name = "N")]
    from_pr: Option<u64>,
    /// Return at once instead of attaching
    #[arg(long)]
    bg: bool,
    /// Attach in a new tmux window instead of this terminal (inside tmux;
    /// `attach.tmux = true` makes it the default there)
    #[arg(long, conflicts_with = "bg")]
    tmux: bool,
    /// A variable for the agent (repeatable); wins over `[env]` and env files
    #[arg(long = "env", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// A dotenv file whose variables the agent gets as secrets: never shown
    /// or stored; read once (a `<(…)` works) and kept in the supervisor's
    /// memory for respawns (repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<std::path::PathBuf>,
    /// Run the agent fenced in: `workspace` (bubblewrap; the default when
    /// no MODE is given), `container` (Docker or Podman), or `none`
    /// (default: `sandbox.mode`)
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "workspace")]
    sandbox: Option<String>,
    /// Print the new session as one JSON object (name, id, branch, path,
    /// agent, base, notes) and do not attach
    #[arg(long, conflicts_with = "tmux")]
    json: bool,
}

pub fn run(cx: &Context, args: &NewArgs) -> Result<(), CliError> {
    // Cheap checks first, so bad input never starts a supervisor.
    if let Some(name) = &args.name {
        tandem_core::session::slugs::validate(name)?;
    }
    let vars = crate::context::env_pairs(&args.vars)?;
    // Read once, here: a `<(op inject …)` cannot be read again.
    let env_file_vars = crate::context::read_env_files(&args.env_files)?;
    let env_files = env_file_vars.iter().map(|f| f.path.clone()).collect();
    let in_tmux = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
    if args.tmux && !in_tmux {
        return Err(CliError::user(
            "--tmux opens a tmux window, but this is not inside tmux ($TMUX is unset); run it in tmux or drop --tmux",
        ));
    }
    let (repo, config) = cx.repo()?;
    crate::commands::repo_hooks::ensure_approved(cx, &repo, &config)?;
    let tmux = !args.bg && !args.json && in_tmux && (args.tmux || config.attach.tmux);
    let interactive =
        !args.bg && !args.json && !tmux && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (cols, rows) = if interactive { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let request = CreateRequest {
        cwd: cx.cwd.clone(),
        name: args.name.clone(),
        title: args.title.clone(),
        agent: args.agent.clone(),
        prompt: args.prompt.clone(),
        base: args.base.clone(),
        branch: args.branch.clone(),
        from_pr: args.from_pr,
        env: crate::context::agent_env(),
        rows,
        cols,
        fork_of: None,
        overlay: None,
        review_of: None,
        task: None,
        vars,
        env_files,
        env_file_vars,
        sandbox: args.sandbox.clone(),
        creator: None,
    };
    let tandem = cx.tandem()?;
    let Created { session, notes } =
        crate::progress::during("creating the session (fetching the base, making the worktree)", || {
            tandem.create(request)
        })?;
    if args.json {
        writeln!(std::io::stdout().lock(), "{}", crate::context::created_json(&session, &notes))?;
        return Ok(());
    }
    for note in &notes {
        crate::context::note!("{}", tandem_core::text::visible(note));
    }
    if tmux {
        let exe = std::env::current_exe()?;
        // The window's command gets the tmux server's environment: hand
        // over what decides which tandem it talks to.
        let pass: Vec<String> = ["TANDEM_HOME", "TANDEM_DETACH_KEY", "XDG_RUNTIME_DIR"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
            .flat_map(|kv| ["-e".to_owned(), kv])
            .collect();
        let status = std::process::Command::new("tmux")
            .args(["new-window", "-n", &session.slug])
            .args(&pass)
            .arg("-c")
            .arg(&session.path)
            .arg(exe)
            .args(["attach", &session.slug])
            .status()?;
        if !status.success() {
            return Err(CliError::user(format!(
                "session {} started, but tmux did not open a window for it; run `tandem attach {}`",
                session.slug, session.slug
            )));
        }
        writeln!(std::io::stdout().lock(), "{}\t{}", session.slug, session.path.display())?;
        return Ok(());
    }
    if !interactive {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}\t{}", session.slug, session.path.display())?;
        if !args.bg {
            eprintln!("not attaching: no terminal; run `tandem attach {}` from one", session.slug);
        }
        return Ok(());
    }
    let created =
        format!("created session {} on branch {} in {}", session.slug, session.branch, session.path.display());
    eprintln!("{}", tandem_core::text::visible(&created));
    attach::attach(cx, &session, &config)
}
