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
    /// Make the session on this remote host (`tandem remote add`) instead
    /// of this machine
    #[arg(long, value_name = "HOST", conflicts_with_all = ["tmux", "from_pr"])]
    on: Option<String>,
}

pub fn run(cx: &Context, args: &NewArgs) -> Result<(), CliError> {
    // Cheap checks first, so bad input never starts a supervisor.
    if let Some(name) = &args.name {
        tandem_core::session::slugs::validate(name)?;
    }
    let vars = crate::context::env_pairs(&args.vars)?;
    if let Some(host) = &args.on {
        return on_remote(cx, args, host, &vars);
    }
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
        name: args.name.clone(),
        title: args.title.clone(),
        agent: args.agent.clone(),
        prompt: args.prompt.clone(),
        base: args.base.clone(),
        branch: args.branch.clone(),
        from_pr: args.from_pr,
        rows,
        cols,
        vars,
        env_files,
        env_file_vars,
        sandbox: args.sandbox.clone(),
        ..CreateRequest::new(cx.cwd.clone(), crate::context::agent_env())
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

/// `tandem new --on HOST`: the repository there (found by its `origin`
/// URL, cloned from it, or a mirror this one's base is pushed into over
/// ssh), then `tandem new` run there with the same arguments; env files
/// travel over the channel, never onto that machine's disk. Attaches
/// (over the same link) unless `--bg` or `--json`.
fn on_remote(cx: &Context, args: &NewArgs, host: &str, vars: &[(String, String)]) -> Result<(), CliError> {
    use tandem_core::protocol::RunAt;
    use tandem_core::text::visible;
    let fail = crate::commands::remote::fail;
    let link = crate::commands::remote::link(cx, host)?;
    // A secret travels in an env file (below), one variable a line: a
    // line break cannot, and as an argument it would show in that
    // machine's process list. Refused before anything is made.
    if let Some((key, _)) =
        vars.iter().find(|(key, value)| tandem_core::secrets::is_secret_name(key) && value.contains('\n'))
    {
        return Err(CliError::user(format!(
            "the value of {key} holds a line break, which cannot reach remote {host} without showing in its process list; give it on one line (encoded, e.g. base64) or set it in that host's own environment"
        )));
    }
    // Read once, here, as locally.
    let mut env_files = Vec::new();
    for file in &args.env_files {
        env_files.push(std::fs::read(file).map_err(|e| {
            CliError::user(format!("cannot read the env file {}: {e}", visible(&file.display().to_string())))
        })?);
    }
    let (path, base) = remote_repo(cx, &link, host, args.base.as_deref(), true)?;
    let mut remote_args = vec!["new".to_owned(), "--bg".to_owned(), "--json".to_owned()];
    let mut flag = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            remote_args.push(name.to_owned());
            remote_args.push(v.clone());
        }
    };
    flag("--title", &args.title);
    flag("--prompt", &args.prompt);
    flag("--agent", &args.agent);
    flag("--base", &base);
    flag("--branch", &args.branch);
    // A value under a secret's name (`*_API_KEY`, `*_TOKEN`, …) would
    // show in that machine's process list as an argument: it travels as
    // one more env file, through a pipe, instead (kept in the remote
    // supervisor's memory, as `--env-file` secrets are).
    let mut secrets = String::new();
    for (v, (key, value)) in args.vars.iter().zip(vars) {
        if tandem_core::secrets::is_secret_name(key) {
            // An env file's reader strips one pair of matching quotes
            // around the whole value and reads nothing inside them, so
            // any one-line value (quotes in it too) arrives as it is.
            secrets.push_str(&format!("{key}='{value}'\n"));
        } else {
            remote_args.push("--env".to_owned());
            remote_args.push(v.clone());
        }
    }
    if !secrets.is_empty() {
        env_files.push(secrets.into_bytes());
    }
    for i in 0..env_files.len() {
        remote_args.push("--env-file".to_owned());
        remote_args.push(format!("{{env-file {i}}}"));
    }
    if let Some(mode) = &args.sandbox {
        remote_args.push(format!("--sandbox={mode}"));
    }
    if let Some(name) = &args.name {
        remote_args.push("--".to_owned());
        remote_args.push(name.clone());
    }
    let mut out = Vec::new();
    let mut err = std::io::stderr();
    let code = link
        .open()
        .map_err(fail)?
        .run(remote_args, RunAt::Repo { path }, env_files, &mut out, &mut |text| {
            let _ = err.write_all(crate::commands::remote::escape_keep_lines(text).as_bytes());
        })
        .map_err(fail)?;
    if code != Some(0) {
        std::process::exit(code.unwrap_or(1));
    }
    let mut created: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|e| CliError::Internal(format!("the remote's `tandem new --json` did not print JSON: {e}")))?;
    created["host"] = serde_json::Value::from(host);
    let name = created["name"].as_str().unwrap_or_default().to_owned();
    // The next `tandem list` refreshes it; until then commands by name
    // find it here.
    let registry = tandem_core::remote::Registry::new(&cx.paths);
    let _ = registry.update(host, |known| {
        known.rows.push(tandem_core::rows::SessionRow {
            name: name.clone(),
            state: "starting".into(),
            base: created["base"].as_str().unwrap_or_default().to_owned(),
            ..Default::default()
        });
    });
    if args.json {
        writeln!(std::io::stdout().lock(), "{created}")?;
        return Ok(());
    }
    let shown = visible(&name);
    let line = format!("{shown}\t{host}:{}", visible(created["path"].as_str().unwrap_or_default()));
    writeln!(std::io::stdout().lock(), "{line}")?;
    if args.bg {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!("not attaching: no terminal; run `tandem attach {host}:{shown}` from one");
        return Ok(());
    }
    crate::commands::route::attach(cx, host, &name)
}

/// This repository's counterpart on remote `host` (see `tandem new --on`):
/// its folder there, and the base a session there should branch from
/// (`base` as given, or, for a mirror when `push` is set, the branch just
/// pushed into it).
///
/// # Errors
/// The host does not answer; the base is not a commit here; the push
/// fails.
pub(crate) fn remote_repo(
    cx: &Context,
    link: &tandem_core::remote::ssh::Link,
    host: &str,
    base: Option<&str>,
    push: bool,
) -> Result<(std::path::PathBuf, Option<String>), CliError> {
    use tandem_core::protocol::{RemoteReply, RemoteRequest};
    use tandem_core::text::visible;
    let fail = crate::commands::remote::fail;
    let wanted_base = base;
    let (repo, _) = cx.repo()?;
    let url = tandem_core::git::config_get(&repo.root, "remote.origin.url")?;
    let folder = tandem_core::session::lookup::repo_name(&repo.root);
    let folder: String =
        folder.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).take(64).collect();
    let folder = folder.trim_start_matches('.').to_owned();
    let key = tandem_core::remote::repo_key(&repo.common_dir);
    let asked =
        RemoteRequest::Repo { url: url.clone(), name: if folder.is_empty() { "repo".into() } else { folder }, key };
    let (path, how) =
        match link.open().map_err(fail)?.ask(&asked, link.timeout.max(std::time::Duration::from_secs(300))) {
            Ok(RemoteReply::Repo { path, how }) => (path, how),
            Ok(_) => {
                return Err(CliError::Internal("the remote answered a repository request with something else".into()));
            }
            Err(e) => return Err(fail(e)),
        };
    let mut base = wanted_base.map(str::to_owned);
    if how == "mirror" && push {
        // No shared remote: push the base over ssh into the mirror.
        // `head` and `fresh` (tandem's own base words) mean this
        // checkout's HEAD and, when known here, its remote's default
        // branch; the mirror gets that commit under this branch's name.
        let symbolic = matches!(wanted_base, None | Some("head" | "fresh"));
        let fresh_tip = (wanted_base == Some("fresh"))
            .then(|| tandem_core::git::resolve_commit(&repo.root, "refs/remotes/origin/HEAD").ok().flatten())
            .flatten();
        let wanted = if symbolic { "HEAD" } else { wanted_base.unwrap_or("HEAD") };
        let commit = tandem_core::git::resolve_commit(&repo.root, wanted)?.ok_or_else(|| {
            CliError::user(format!(
                "--base {} is not a commit here; name a branch or commit of this repository",
                visible(wanted)
            ))
        })?;
        let commit = fresh_tip.clone().unwrap_or(commit);
        let branch = match wanted_base.filter(|_| !symbolic) {
            Some(b) if tandem_core::git::branch_exists(&repo.root, b)? => b.to_owned(),
            Some(_) => "tandem-base".to_owned(),
            None if fresh_tip.is_some() => {
                tandem_core::git::default_branch(&repo.root)?.unwrap_or_else(|| "tandem-base".to_owned())
            }
            None => tandem_core::git::current_branch(&repo.root)?.unwrap_or_else(|| "tandem-base".to_owned()),
        };
        let url = link.git_url(&path).map_err(fail)?;
        let out = link
            .git_command(&repo.root)
            .args(["push", "--quiet", "--force", "--no-verify", "--"])
            .arg(&url)
            .arg(format!("{commit}:refs/heads/{branch}"))
            .output()?;
        if !out.status.success() {
            return Err(CliError::user(format!(
                "pushing the base to {host} failed: {}",
                visible(String::from_utf8_lossy(&out.stderr).trim())
            )));
        }
        base = Some(branch);
    }
    Ok((path, base))
}
