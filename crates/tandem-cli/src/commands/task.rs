use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tandem_core::conflicts;
use tandem_core::git;
use tandem_core::protocol::{Request, Response, TaskNewRequest};
use tandem_core::session;
use tandem_core::ship;
use tandem_core::store::{CheckResult, EventKind, Session, SessionState, Store, Task, TaskStatus};
use tandem_core::tasks::{self, trial};
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Tasks and trials: one objective, several agents at it in parallel,
/// compared side by side, the best promoted
#[derive(clap::Args, Debug)]
pub struct TaskArgs {
    #[command(subcommand)]
    command: TaskCommand,
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
    match &args.command {
        TaskCommand::New(a) => new(cx, a),
        TaskCommand::Show(a) => show(cx, a),
        TaskCommand::Diff(a) => diff(cx, a),
        TaskCommand::Promote(a) => promote(cx, a),
        TaskCommand::List(a) => list(cx, a),
        TaskCommand::Set(a) => set(cx, a),
    }
}

/// How long a check may run in one worktree.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

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

/// The task called `name` in this repository, and its trials.
fn find(cx: &Context, store: &Store, name: &str) -> Result<(Task, Vec<Session>), CliError> {
    let (repo, _) = cx.repo()?;
    Ok(tasks::find(store, &repo, name)?)
}

/// The trial `which` names: a number (`2`, `t2`) or a session name.
fn pick<'a>(task: &Task, trials: &'a [Session], which: &str) -> Result<&'a Session, CliError> {
    tasks::pick(task, trials, which).map_err(|e| CliError::user(e.to_string()))
}

/// A trial's work as one commit: its worktree's state (uncommitted work
/// included), else its branch's tip (archived).
fn state_of(cx: &Context, repo_root: &std::path::Path, s: &Session) -> Result<String, CliError> {
    if s.path.is_dir() {
        cx.paths.ensure_state_dir()?;
        return Ok(conflicts::state_commit(&s.path, &cx.paths.state_dir)?);
    }
    git::resolve_commit(repo_root, &format!("refs/heads/{}", s.branch))?
        .ok_or_else(|| CliError::user(format!("trial `{}` has no worktree and its branch is gone", s.slug)))
}

#[derive(Serialize)]
struct CheckJson {
    command: String,
    passed: bool,
    exit_code: Option<i32>,
    duration_ms: i64,
    output: String,
}

#[derive(Serialize)]
struct TrialJson {
    trial: i64,
    name: String,
    branch: String,
    agent: String,
    state: String,
    promoted: bool,
    insertions: u32,
    deletions: u32,
    files: Vec<String>,
    check: Option<CheckJson>,
    duration_secs: i64,
    tokens: Option<u64>,
    cost_usd: Option<f64>,
    handoff: Option<String>,
    handoff_summary: Option<String>,
    outside_owned: Vec<String>,
}

fn show(cx: &Context, args: &ShowArgs) -> Result<(), CliError> {
    let store = cx.store()?;
    let (task, trials) = find(cx, &store, &args.task)?;
    let (repo, config) = cx.repo()?;
    let now = tandem_core::unix_now();
    // Each trial's state commit and what it changed.
    let mut rows: Vec<TrialJson> = Vec::new();
    let mut states = Vec::new();
    for s in &trials {
        let state = state_of(cx, &repo.root, s)?;
        let base_tip = git::resolve_commit(&repo.root, &s.base_ref)?.unwrap_or_else(|| s.base_commit.clone());
        let fork = git::merge_base(&repo.root, &state, &base_tip)?.unwrap_or(base_tip);
        let numstat = git::read(&repo.root, &["diff", "--numstat", "-z", "--no-renames", &fork, &state])?;
        let counts = ship::parse_numstat(&numstat);
        let events = store.events(&s.id, 0, 1_000_000)?;
        let (tokens, cost) = trial::usage(&events);
        let handoff = events.iter().rev().find(|e| e.kind == EventKind::Handoff).map(|e| e.text.clone());
        let last = events.last().map_or(s.updated_at, |e| e.at_ms / 1000);
        let live = session::facts::live_state(s);
        let turn_over =
            matches!(s.activity, Some(tandem_core::store::Activity::Idle | tandem_core::store::Activity::Asking));
        let end = if live == SessionState::Running && !turn_over { now } else { last.max(s.created_at) };
        let files: Vec<String> = counts.iter().map(|c| c.path.clone()).collect();
        let outside = if s.owned.is_empty() {
            Vec::new()
        } else {
            files.iter().filter(|p| !conflicts::owns(&s.owned, p)).cloned().collect()
        };
        let quiet = config.supervisor.quiet_secs;
        let (listed, _) = super::list::listed_state(cx, s, now, quiet);
        rows.push(TrialJson {
            trial: s.trial.unwrap_or_default(),
            name: s.slug.clone(),
            branch: s.branch.clone(),
            agent: s.agent.clone(),
            state: if live == SessionState::Archived { "archived".to_owned() } else { listed.to_owned() },
            promoted: task.promoted.as_deref() == Some(s.id.as_str()),
            insertions: counts.iter().filter_map(|c| c.insertions).sum(),
            deletions: counts.iter().filter_map(|c| c.deletions).sum(),
            files,
            check: None,
            duration_secs: end - s.created_at,
            tokens,
            cost_usd: cost,
            handoff_summary: handoff.as_deref().and_then(trial::summary_line),
            handoff,
            outside_owned: outside,
        });
        states.push(state);
    }
    // The check: stored results, the missing ones run now, in parallel.
    if let Some(command) = &task.check {
        let mut results: HashMap<usize, CheckResult> = HashMap::new();
        let mut missing = Vec::new();
        for (i, (s, state)) in trials.iter().zip(&states).enumerate() {
            match store.check_result(&s.id, state, command)? {
                Some(r) => {
                    results.insert(i, r);
                }
                None if !args.no_check && s.path.is_dir() => missing.push(i),
                None => {}
            }
        }
        if !missing.is_empty() && !args.json {
            eprintln!("running `{}` in {} trial(s)…", visible(command), missing.len());
        }
        // A sandboxed trial's check runs its agent's code: in its fence.
        let env = crate::context::agent_env();
        let mut fences = HashMap::new();
        for &i in &missing {
            if let Some(fence) = tandem_core::session::fence(&cx.paths, &repo, &config, &trials[i], &env, None)? {
                fences.insert(i, fence);
            }
        }
        let ran: Vec<(usize, std::io::Result<CheckResult>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = missing
                .iter()
                .map(|&i| {
                    let path = trials[i].path.clone();
                    let fence = fences.get(&i);
                    scope.spawn(move || (i, trial::run_check(&path, command, CHECK_TIMEOUT, fence)))
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (i, result) in ran {
            let result = result.map_err(|e| CliError::user(format!("cannot run `{command}`: {e}")))?;
            // Kept by the supervisor, so this state is not checked again.
            let request = Request::CheckRan {
                session_id: trials[i].id.clone(),
                state: states[i].clone(),
                command: command.clone(),
                result: result.clone(),
            };
            cx.supervisor()?.request(&request)?;
            results.insert(i, result);
        }
        for (i, row) in rows.iter_mut().enumerate() {
            row.check = results.remove(&i).map(|r| CheckJson {
                command: command.clone(),
                passed: r.exit_code == Some(0),
                exit_code: r.exit_code,
                duration_ms: r.duration_ms,
                output: r.output,
            });
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "task": {
                "name": task.slug,
                "objective": task.objective,
                "status": task.status,
                "check": task.check,
                "owned": task.owned,
                "promoted": trials.iter().find(|s| task.promoted.as_deref() == Some(s.id.as_str())).map(|s| s.slug.clone()),
            },
            "trials": rows,
        });
        serde_json::to_writer_pretty(&mut out, &json).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "task {} ({}): {}", task.slug, task.status.as_str(), visible(&tasks::short(&task.objective, 100)))?;
    let mut table = vec![
        ["TRIAL", "SESSION", "AGENT", "STATE", "DIFF", "FILES", "CHECK", "TIME", "TOKENS", "COST", "HANDOFF"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for r in &rows {
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
    for r in rows.iter().filter(|r| !r.outside_owned.is_empty()) {
        let paths = r.outside_owned.join(", ");
        writeln!(out, "warning: {} changed files outside its owned paths: {}", r.name, visible(&paths))?;
    }
    Ok(())
}

fn diff(cx: &Context, args: &DiffArgs) -> Result<(), CliError> {
    let store = cx.store()?;
    let (task, trials) = find(cx, &store, &args.task)?;
    let (a, b) = (pick(&task, &trials, &args.a)?, pick(&task, &trials, &args.b)?);
    let (repo, _) = cx.repo()?;
    let (from, to) = (state_of(cx, &repo.root, a)?, state_of(cx, &repo.root, b)?);
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
    let (repo, _) = cx.repo()?;
    let store = cx.store()?;
    let tasks = match store.find_repo(&repo.common_dir)? {
        Some(id) => store.tasks(id)?,
        None => Vec::new(),
    };
    let mut out = std::io::stdout().lock();
    let mut rows = Vec::new();
    for t in &tasks {
        let trials = store.trials(&t.id)?;
        let mut states: Vec<String> = Vec::new();
        for s in &trials {
            let live = session::facts::live_state(s);
            states.push(if live == SessionState::Archived {
                "archived".to_owned()
            } else {
                session::facts::reported_state(s).to_owned()
            });
        }
        let promoted = trials.iter().find(|s| t.promoted.as_deref() == Some(s.id.as_str())).map(|s| s.slug.clone());
        rows.push((t, trials.len(), states, promoted));
    }
    if args.json {
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|(t, n, states, promoted)| {
                serde_json::json!({
                    "name": t.slug,
                    "objective": t.objective,
                    "status": t.status,
                    "trials": n,
                    "states": states,
                    "promoted": promoted,
                    "check": t.check,
                    "created_at": t.created_at,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &json).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no tasks in this repository; start one with `tandem task new \"OBJECTIVE\" --trials 3`")?;
        return Ok(());
    }
    let now = tandem_core::unix_now();
    let mut table = vec![["TASK", "STATUS", "TRIALS", "PROMOTED", "AGE", "OBJECTIVE"].map(str::to_owned).to_vec()];
    for (t, _, states, promoted) in &rows {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in states {
            match counts.iter_mut().find(|(k, _)| k == s) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.clone(), 1)),
            }
        }
        table.push(vec![
            t.slug.clone(),
            t.status.as_str().to_owned(),
            counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", "),
            promoted.clone().unwrap_or_else(|| "-".to_owned()),
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
