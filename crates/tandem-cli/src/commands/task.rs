use std::io::Write;
use std::process::Stdio;

use tandem_core::git;
use tandem_core::protocol::{Request, Response, TaskNewRequest};
use tandem_core::store::TaskStatus;
use tandem_core::tasks;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Tasks and trials: one objective, several agents at it in parallel,
/// compared side by side, the best promoted
#[derive(clap::Args, Debug)]
pub struct TaskArgs {
    #[command(subcommand)]
    command: TaskCommand,
    /// Run the task on this remote host (`tandem remote add`): its trials
    /// are sessions there, and show, diff, promote, list and set read them
    /// there
    #[arg(long, global = true, value_name = "HOST")]
    on: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum TaskCommand {
    New(NewArgs),
    Show(ShowArgs),
    Diff(DiffArgs),
    Promote(PromoteArgs),
    #[command(alias = "ls")]
    List(ListArgs),
    Set(SetArgs),
}

/// Start a task: N trials at once, each a session with its own worktree,
/// branch (`TASK/t1`, …) and the same brief
#[derive(clap::Args, Debug)]
struct NewArgs {
    /// What the trials should achieve
    objective: String,
    /// The task's name [default: from the objective]
    #[arg(long)]
    name: Option<String>,
    /// How many trials [default: one per agent, else 2]
    #[arg(long)]
    trials: Option<usize>,
    /// The agents, taken in turn by the trials (`claude,codex`)
    #[arg(long, value_delimiter = ',')]
    agents: Vec<String>,
    /// Where the trials branch from (`fresh`, `head` or a commit-ish)
    #[arg(long)]
    base: Option<String>,
    /// A shell command run in each trial's worktree to compare them (`cargo test`)
    #[arg(long, value_name = "CMD")]
    check: Option<String>,
    /// A path (file or folder) the trials own; changes elsewhere are warned about
    #[arg(long = "owns", value_name = "PATH")]
    owns: Vec<String>,
    /// Run each trial fenced in: `workspace` (the default when no MODE is
    /// given), `container`, or `none` (default: `sandbox.mode`)
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "workspace")]
    sandbox: Option<String>,
}

/// The trials side by side: state, diffstat, files, the check's result,
/// time, tokens and cost, and each handoff's summary
#[derive(clap::Args, Debug)]
struct ShowArgs {
    /// The task: its name, from `tandem task list`
    task: String,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
    /// Do not run the check where it has no result for a trial's state
    #[arg(long)]
    no_check: bool,
}

/// Compare two trials' work directly (`git diff` from one to the other,
/// uncommitted work included)
#[derive(clap::Args, Debug)]
struct DiffArgs {
    /// The task: its name, from `tandem task list`
    task: String,
    /// A trial: its number (`1`, `t1`) or its session's name
    a: String,
    /// The other trial, named the same way
    b: String,
    /// Only the diffstat: files and lines changed
    #[arg(long, conflicts_with = "name_only")]
    stat: bool,
    /// Only the names of the files that differ
    #[arg(long)]
    name_only: bool,
}

/// Make a trial the task's result: its branch becomes `TASK/result`, the
/// other trials are archived (never deleted); nothing is merged
#[derive(clap::Args, Debug)]
struct PromoteArgs {
    /// The task: its name, from `tandem task list`
    task: String,
    /// The trial: its number (`2`, `t2`) or its session's name
    trial: String,
}

/// The repository's tasks
#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Print a JSON array of tasks instead of a table
    #[arg(long)]
    json: bool,
}

/// Change a task's status
#[derive(clap::Args, Debug)]
struct SetArgs {
    /// The task: its name, from `tandem task list`
    task: String,
    /// backlog, in-progress, in-review, done or cancelled
    #[arg(long)]
    status: String,
}

pub fn run(cx: &Context, args: &TaskArgs) -> Result<(), CliError> {
    if let Some(host) = &args.on {
        return on_remote(cx, args, host);
    }
    match &args.command {
        TaskCommand::New(a) => new(cx, a),
        TaskCommand::Show(a) => show(cx, a),
        TaskCommand::Diff(a) => diff(cx, a),
        TaskCommand::Promote(a) => promote(cx, a),
        TaskCommand::List(a) => list(cx, a),
        TaskCommand::Set(a) => set(cx, a),
    }
}

/// Asks the supervisor to start the task (it names and stores it, and
/// makes the trials, under the repository's lock); prints each trial.
fn new(cx: &Context, args: &NewArgs) -> Result<(), CliError> {
    let request = TaskNewRequest {
        cwd: cx.cwd.clone(),
        objective: args.objective.clone(),
        name: args.name.clone(),
        trials: args.trials,
        agents: args.agents.clone(),
        base: args.base.clone(),
        check: args.check.clone(),
        owns: args.owns.clone(),
        sandbox: args.sandbox.clone(),
        env: Vec::new(),
        creator: None,
    };
    // Bad input is refused before anything starts.
    tasks::check_new(&request).map_err(|e| CliError::user(e.to_string()))?;
    cx.repo()?;
    let request = TaskNewRequest { env: crate::context::agent_env(), ..request };
    let mut supervisor = cx.supervisor()?;
    let answer = crate::progress::during("making the trials (fetching the base, making the worktrees)", || {
        supervisor.request(&Request::TaskNew(Box::new(request)))
    })?;
    let Response::TaskCreated { slug, count, trials, failed } = answer else {
        return Err(CliError::Internal("the supervisor answered task new with something else".into()));
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "task {slug}: {count} trial(s)")?;
    for trial in &trials {
        for note in &trial.notes {
            crate::context::note!("{}", visible(note));
        }
        let session = &trial.session;
        writeln!(out, "{}\t{}\t{}", session.slug, session.agent, session.path.display())?;
    }
    if let Some(failed) = failed {
        return Err(CliError::User(failed));
    }
    writeln!(out, "compare them with `tandem task show {slug}`")?;
    Ok(())
}

fn show(cx: &Context, args: &ShowArgs) -> Result<(), CliError> {
    let env = crate::context::agent_env();
    let json = args.json;
    let shown = cx.tandem()?.task_show(&cx.cwd, &args.task, !args.no_check, &env, &mut |command, n| {
        if !json {
            eprintln!("running `{}` in {n} trial(s)…", visible(command));
        }
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &shown).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let task = &shown.task;
    writeln!(out, "task {} ({}): {}", task.name, task.status.as_str(), visible(&tasks::short(&task.objective, 100)))?;
    let mut table = vec![
        ["TRIAL", "SESSION", "AGENT", "STATE", "DIFF", "FILES", "CHECK", "TIME", "TOKENS", "COST", "HANDOFF"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for r in &shown.trials {
        let check = match &r.check {
            None if task.check.is_none() => "-".to_owned(),
            None => "not run".to_owned(),
            Some(c) if c.passed => format!("pass {:.1}s", c.duration_ms as f64 / 1000.0),
            Some(c) => match c.exit_code {
                Some(code) => format!("FAIL ({code}) {:.1}s", c.duration_ms as f64 / 1000.0),
                None => "FAIL (killed)".to_owned(),
            },
        };
        table.push(vec![
            format!("t{}{}", r.trial, if r.promoted { " *" } else { "" }),
            r.name.clone(),
            tasks::short(&r.agent, 20),
            r.state.clone(),
            format!("+{} -{}", r.insertions, r.deletions),
            r.files.len().to_string(),
            check,
            tandem_core::short_age(r.duration_secs),
            r.tokens.map_or_else(|| "-".to_owned(), |t| t.to_string()),
            r.cost_usd.map_or_else(|| "-".to_owned(), |c| format!("${c:.2}")),
            r.handoff_summary.as_deref().map_or_else(|| "-".to_owned(), |h| tasks::short(h, 60)),
        ]);
    }
    super::list::write_columns(&mut out, &table)?;
    for r in shown.trials.iter().filter(|r| !r.outside_owned.is_empty()) {
        let paths = r.outside_owned.join(", ");
        writeln!(out, "warning: {} changed files outside its owned paths: {}", r.name, visible(&paths))?;
    }
    Ok(())
}

fn diff(cx: &Context, args: &DiffArgs) -> Result<(), CliError> {
    let (repo, from, to) = cx.tandem()?.task_states(&cx.cwd, &args.task, &args.a, &args.b)?;
    let mut cmd = git::command(&repo.root);
    cmd.env_remove("LC_ALL").args(["diff", "-M"]);
    if args.stat {
        cmd.arg("--stat");
    }
    if args.name_only {
        cmd.arg("--name-only");
    }
    cmd.args([&from, &to, "--"]).stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let status = cmd.status()?;
    if status.success() { Ok(()) } else { Err(CliError::user("`git diff` failed; see its message above")) }
}

fn promote(cx: &Context, args: &PromoteArgs) -> Result<(), CliError> {
    let request = Request::TaskPromote {
        cwd: cx.cwd.clone(),
        task: args.task.clone(),
        trial: args.trial.clone(),
        env: crate::context::agent_env(),
    };
    let Response::TaskPromoted { task, winner, archived, failed } = cx.supervisor()?.request(&request)? else {
        return Err(CliError::Internal("the supervisor answered task promote with something else".into()));
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "promoted {} of task {task}: its branch is now {}", winner.slug, visible(&winner.branch))?;
    for other in &archived {
        for note in &other.notes {
            crate::context::note!("{}", visible(note));
        }
        let session = &other.session;
        writeln!(
            out,
            "archived {} (branch {} kept; `tandem restore {}` brings it back)",
            session.slug,
            visible(&session.branch),
            session.slug
        )?;
    }
    if let Some(failed) = failed {
        return Err(CliError::User(failed));
    }
    writeln!(
        out,
        "nothing was merged; `tandem pr {}` or `tandem merge {}` when it is ready",
        winner.slug, winner.slug
    )?;
    Ok(())
}

fn list(cx: &Context, args: &ListArgs) -> Result<(), CliError> {
    let rows = cx.tandem()?.task_list(&cx.cwd)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no tasks in this repository; start one with `tandem task new \"OBJECTIVE\" --trials 3`")?;
        return Ok(());
    }
    let now = tandem_core::unix_now();
    let mut table = vec![["TASK", "STATUS", "TRIALS", "PROMOTED", "AGE", "OBJECTIVE"].map(str::to_owned).to_vec()];
    for t in &rows {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in &t.states {
            match counts.iter_mut().find(|(k, _)| k == s) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.clone(), 1)),
            }
        }
        table.push(vec![
            t.name.clone(),
            t.status.as_str().to_owned(),
            counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", "),
            t.promoted.clone().unwrap_or_else(|| "-".to_owned()),
            tandem_core::short_age(now - t.created_at),
            tasks::short(&t.objective, 60),
        ]);
    }
    super::list::write_columns(&mut out, &table)?;
    Ok(())
}

fn set(cx: &Context, args: &SetArgs) -> Result<(), CliError> {
    let status: TaskStatus = args.status.parse().map_err(CliError::User)?;
    let request = Request::TaskSetStatus { cwd: cx.cwd.clone(), task: args.task.clone(), status };
    let Response::TaskStatusSet { task, status } = cx.supervisor()?.request(&request)? else {
        return Err(CliError::Internal("the supervisor answered task set with something else".into()));
    };
    println!("task {task} is {}", status.as_str());
    Ok(())
}

/// `tandem task … --on HOST`: the same task command, run on the host in
/// this repository's counterpart there (for `task new`, with the base
/// pushed into a mirror as `tandem new --on` does).
fn on_remote(cx: &Context, args: &TaskArgs, host: &str) -> Result<(), CliError> {
    let link = crate::commands::remote::link(cx, host)?;
    let (base, push) = match &args.command {
        TaskCommand::New(a) => {
            tasks::check_new(&TaskNewRequest {
                cwd: cx.cwd.clone(),
                objective: a.objective.clone(),
                name: a.name.clone(),
                trials: a.trials,
                agents: a.agents.clone(),
                base: a.base.clone(),
                check: a.check.clone(),
                owns: a.owns.clone(),
                sandbox: a.sandbox.clone(),
                env: Vec::new(),
                creator: None,
            })
            .map_err(|e| CliError::user(e.to_string()))?;
            (a.base.as_deref(), true)
        }
        _ => (None, false),
    };
    let (path, pushed_base) = crate::commands::new::remote_repo(cx, &link, host, base, push)?;
    // This command line, less `--on HOST` and `--repo PATH` (they mean
    // nothing there), with the pushed base where a mirror needed one.
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let new_base = pushed_base.filter(|b| matches!(args.command, TaskCommand::New(_)) && Some(b.as_str()) != base);
    let mut dropped = vec!["--on", "--repo"];
    if new_base.is_some() {
        dropped.push("--base");
    }
    let mut forwarded = Vec::new();
    let mut skip = false;
    for a in argv {
        if skip {
            skip = false;
        } else if dropped.contains(&a.as_str()) {
            skip = true;
        } else if !dropped.iter().any(|d| a.starts_with(&format!("{d}="))) {
            forwarded.push(a);
        }
    }
    if let Some(b) = new_base {
        forwarded.push("--base".to_owned());
        forwarded.push(b);
    }
    crate::commands::remote::forward(cx, host, forwarded, tandem_core::protocol::RunAt::Repo { path }, Vec::new())
}
