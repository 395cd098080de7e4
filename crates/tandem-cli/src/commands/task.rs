use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tandem_core::git;
use tandem_core::protocol::{CreateRequest, Request, Response, TrialOf};
use tandem_core::session::{self, conflicts, names, ship, task};
use tandem_core::store::{CheckResult, EventKind, Session, SessionState, Store, Task, TaskStatus};
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
    task: String,
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
    task: String,
    /// A trial: its number (`1`, `t1`) or its session's name
    a: String,
    b: String,
    #[arg(long, conflicts_with = "name_only")]
    stat: bool,
    #[arg(long)]
    name_only: bool,
}

/// Make a trial the task's result: its branch becomes `TASK/result`, the
/// other trials are archived (never deleted); nothing is merged
#[derive(clap::Args, Debug)]
struct PromoteArgs {
    task: String,
    /// The trial: its number (`2`, `t2`) or its session's name
    trial: String,
}

/// The repository's tasks
#[derive(clap::Args, Debug)]
struct ListArgs {
    #[arg(long)]
    json: bool,
}

/// Change a task's status
#[derive(clap::Args, Debug)]
struct SetArgs {
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

/// The most trials one task may start.
const MAX_TRIALS: usize = 16;

/// How long a check may run in one worktree.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn new(cx: &Context, args: &NewArgs) -> Result<(), CliError> {
    let objective = args.objective.trim();
    if objective.is_empty() {
        return Err(CliError::user("the objective is empty; say what the trials should achieve"));
    }
    let trials = args.trials.unwrap_or(if args.agents.is_empty() { 2 } else { args.agents.len() });
    if !(1..=MAX_TRIALS).contains(&trials) {
        return Err(CliError::user(format!("--trials must be 1 to {MAX_TRIALS}, not {trials}")));
    }
    if args.agents.len() > trials {
        return Err(CliError::user(format!(
            "{} agents for {trials} trial(s); pass --trials {} or fewer agents",
            args.agents.len(),
            args.agents.len()
        )));
    }
    if args.agents.iter().any(|a| a.trim().is_empty()) {
        return Err(CliError::user("an agent in --agents is empty; list them like `--agents claude,codex`"));
    }
    if args.check.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err(CliError::user("--check is empty; give the command that checks a trial, or leave it out"));
    }
    let (repo, config) = cx.repo()?;
    let store = cx.store()?;
    let repo_id = store.upsert_repo(&repo.common_dir, &repo.root)?;
    // The supervisor first: one that starts reconciles, undoing a task a
    // `kill -9` left with no trial, so its name is free again.
    let mut client = cx.supervisor()?;
    let slug = match &args.name {
        Some(name) => names::slug_of(name)?,
        None => {
            let words: Vec<&str> = objective.split_whitespace().take(5).collect();
            let base = names::slugify(&words.join(" "));
            let base = if base.is_empty() { "task".to_owned() } else { base.chars().take(40).collect() };
            let base = base.trim_end_matches('-').to_owned();
            let mut slug = base.clone();
            let mut n = 1;
            while store.task_by_slug(repo_id, &slug)?.is_some() {
                n += 1;
                slug = format!("{base}-{n}");
            }
            slug
        }
    };
    if store.task_by_slug(repo_id, &slug)?.is_some() {
        return Err(CliError::user(format!("a task named `{slug}` already exists; pick another --name")));
    }
    let env = crate::context::agent_env();
    let prefix = session::branch_prefix(&repo, &config, &env)?;
    let family = format!("{prefix}{slug}");
    if git::branch_exists(&repo.root, &family)? {
        return Err(CliError::user(format!(
            "a branch named `{family}` exists, so trial branches `{family}/t1`… cannot be made; pick another --name"
        )));
    }
    for i in 1..=trials {
        let (name, branch) = (format!("{slug}-t{i}"), format!("{family}/t{i}"));
        if store.session_by_slug(repo_id, &name)?.is_some() {
            return Err(CliError::user(format!("a session named `{name}` already exists; pick another --name")));
        }
        if git::branch_exists(&repo.root, &branch)? {
            return Err(CliError::user(format!("branch `{branch}` already exists; pick another --name")));
        }
    }
    let mut id = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut id))
        .map_err(|e| CliError::Internal(format!("cannot read /dev/urandom: {e}")))?;
    let task = Task {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
        repo_id,
        slug: slug.clone(),
        objective: objective.to_owned(),
        check: args.check.clone(),
        owned: args.owns.clone(),
        status: TaskStatus::InProgress,
        promoted: None,
        created_at: tandem_core::unix_now(),
    };
    // The supervisor stores the task with its first trial.
    tandem_core::fault::point("task.named");
    let mut new_task = Some(task.clone());
    let mut out = std::io::stdout().lock();
    writeln!(out, "task {slug}: {trials} trial(s)")?;
    for i in 1..=trials {
        let agent = (!args.agents.is_empty()).then(|| args.agents[(i - 1) % args.agents.len()].trim().to_owned());
        let branch = format!("{family}/t{i}");
        let trial = i64::try_from(i).unwrap_or(i64::MAX);
        let brief = task::brief(&slug, objective, trial, trials, &branch, &args.owns, args.check.as_deref());
        let kind = tandem_core::agent::Kind::of(agent.as_deref().unwrap_or("claude"));
        let default_is_shell = agent.is_none() && !claude_installed();
        let prompt = match kind {
            _ if default_is_shell => None,
            tandem_core::agent::Kind::Shell => None,
            tandem_core::agent::Kind::Command => Some("Read .tandem/brief.md and do what it says.".to_owned()),
            _ => Some(brief.clone()),
        };
        let request = CreateRequest {
            cwd: cx.cwd.clone(),
            name: Some(format!("{slug}-t{i}")),
            title: Some(format!("{} (t{i})", short(objective, 60))),
            agent,
            prompt,
            base: args.base.clone(),
            branch: Some(branch),
            from_pr: None,
            env: env.clone(),
            rows: 24,
            cols: 80,
            fork_of: None,
            overlay: None,
            review_of: None,
            task: Some(TrialOf {
                task_id: task.id.clone(),
                trial,
                owned: args.owns.clone(),
                brief,
                new_task: new_task.take(),
            }),
            vars: Vec::new(),
            env_files: Vec::new(),
            sandbox: args.sandbox.clone(),
        };
        let Response::Created { session, notes } = client.request(&Request::Create(Box::new(request)))? else {
            return Err(CliError::Internal("the supervisor answered create with something else".into()));
        };
        for note in &notes {
            eprintln!("note: {}", visible(note));
        }
        writeln!(out, "{}\t{}\t{}", session.slug, session.agent, session.path.display())?;
    }
    writeln!(out, "compare them with `tandem task show {slug}`")?;
    Ok(())
}

fn claude_installed() -> bool {
    tandem_core::process::which("claude", std::env::var_os("PATH").as_deref(), std::path::Path::new("/")).is_some()
}

fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// The task called `name` in this repository, and its trials.
fn find(cx: &Context, store: &Store, name: &str) -> Result<(Task, Vec<Session>), CliError> {
    let (repo, _) = cx.repo()?;
    let missing = || CliError::user(format!("no task named `{name}` here; `tandem task list` shows them"));
    let repo_id = store.find_repo(&repo.common_dir)?.ok_or_else(missing)?;
    let task = store.task_by_slug(repo_id, name)?.ok_or_else(missing)?;
    let trials = store.trials(&task.id)?;
    Ok((task, trials))
}

/// The trial `which` names: a number (`2`, `t2`) or a session name.
fn pick<'a>(task: &Task, trials: &'a [Session], which: &str) -> Result<&'a Session, CliError> {
    let number = which.strip_prefix('t').unwrap_or(which).parse::<i64>().ok();
    trials.iter().find(|s| Some(s.slug.as_str()) == Some(which) || (number.is_some() && s.trial == number)).ok_or_else(
        || {
            CliError::user(format!(
                "task `{}` has no trial `{which}`; name one by number (1 to {}) or session name",
                task.slug,
                trials.len()
            ))
        },
    )
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
        let (tokens, cost) = task::usage(&events);
        let handoff = events.iter().rev().find(|e| e.kind == EventKind::Handoff).map(|e| e.text.clone());
        let last = events.last().map_or(s.updated_at, |e| e.at_ms / 1000);
        let live = session::facts::live_state(s);
        let end = if live == SessionState::Running && s.activity != Some(tandem_core::store::Activity::Idle) {
            now
        } else {
            last.max(s.created_at)
        };
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
            handoff_summary: handoff.as_deref().and_then(task::summary_line),
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
                    scope.spawn(move || (i, task::run_check(&path, command, CHECK_TIMEOUT, fence)))
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (i, result) in ran {
            let result = result.map_err(|e| CliError::user(format!("cannot run `{command}`: {e}")))?;
            store.put_check_result(&trials[i].id, &states[i], command, &result)?;
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
    writeln!(out, "task {} ({}): {}", task.slug, task.status.as_str(), visible(&short(&task.objective, 100)))?;
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
            short(&r.agent, 20),
            r.state.clone(),
            format!("+{} -{}", r.insertions, r.deletions),
            r.files.len().to_string(),
            check,
            tandem_core::short_age(r.duration_secs),
            r.tokens.map_or_else(|| "-".to_owned(), |t| t.to_string()),
            r.cost_usd.map_or_else(|| "-".to_owned(), |c| format!("${c:.2}")),
            r.handoff_summary.as_deref().map_or_else(|| "-".to_owned(), |h| short(h, 60)),
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
    let store = cx.store()?;
    let (task, trials) = find(cx, &store, &args.task)?;
    let winner = pick(&task, &trials, &args.trial)?;
    if let Some(done) = trials.iter().find(|s| task.promoted.as_deref() == Some(s.id.as_str())) {
        return Err(CliError::user(format!(
            "task `{}` already promoted {} (branch {}); nothing changed",
            task.slug, done.slug, done.branch
        )));
    }
    if session::facts::live_state(winner) == SessionState::Archived {
        return Err(CliError::user(format!(
            "trial {} is archived; bring it back with `tandem restore {}` first",
            winner.slug, winner.slug
        )));
    }
    let (repo, config) = cx.repo()?;
    let prefix = session::branch_prefix(&repo, &config, &crate::context::agent_env())?;
    let result = format!("{prefix}{}/result", task.slug);
    // A promote cut short after git renamed the branch (a kill, a closed
    // terminal) is finished: the trial's worktree is on the result branch
    // and its old branch is gone (or `doctor --fix` already recorded it).
    let resumed = winner.branch == result
        || (!git::branch_exists(&repo.root, &winner.branch)?
            && git::worktree_of_branch(&repo.root, &result)?.is_some_and(|at| session::same_path(&at, &winner.path)));
    if git::branch_exists(&repo.root, &result)? && !resumed {
        return Err(CliError::user(format!("branch `{result}` already exists; rename or delete it first")));
    }
    // The branch is renamed where it is checked out, so the trial's
    // session (agent included) carries on on the result branch.
    if !resumed {
        git::run(&repo.root, &["branch", "-m", &winner.branch, &result])?;
    }
    store.set_branch(&winner.id, &result)?;
    store.set_promoted(&task.id, &winner.id)?;
    store.set_task_status(&task.id, TaskStatus::InReview)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "promoted {} of task {}: its branch is now {}", winner.slug, task.slug, visible(&result))?;
    for other in trials.iter().filter(|s| s.id != winner.id) {
        if session::facts::live_state(other) == SessionState::Archived {
            continue;
        }
        let session = super::archive::archive(cx, &other.id)?;
        writeln!(
            out,
            "archived {} (branch {} kept; `tandem restore {}` brings it back)",
            session.slug,
            visible(&session.branch),
            session.slug
        )?;
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
            short(&t.objective, 60),
        ]);
    }
    super::list::write_columns(&mut out, &table)?;
    Ok(())
}

fn set(cx: &Context, args: &SetArgs) -> Result<(), CliError> {
    let status: TaskStatus = args.status.parse().map_err(CliError::User)?;
    let store = cx.store()?;
    let (task, _) = find(cx, &store, &args.task)?;
    store.set_task_status(&task.id, status)?;
    println!("task {} is {}", task.slug, status.as_str());
    Ok(())
}
