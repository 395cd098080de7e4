//! `tandem-bench scale`: issue 23's first target, 200 sessions on one
//! machine. A 5,000-file repository (500 folders) with 200 sessions, every
//! worktree dirty (an edit and an untracked file), each agent having
//! printed ~300 KiB (so the view's preview replays a full 256 KiB tail)
//! and 20 of them printing ten lines a second throughout. Measured:
//! - `list` warm, median and min–max, beside `git status` + `rev-list`
//!   of every worktree with `xargs -P` as wide as tandem's pool; target
//!   ≤ 10 ms;
//! - `status`, target ≤ 5 ms;
//! - a state change (`tandem hook`, as Claude Code runs it) until `tandem
//!   list --json` shows it, p99 ≤ 50 ms;
//! - a frame of the agent view on a selection change, with and without a
//!   pushed change (the model rebuilt from rows read again), p99 ≤ 8 ms,
//!   and beside them the read of the rows on the view's loader thread;
//! - the supervisor's CPU over `--idle-secs` (60) with the 20 agents
//!   printing, and with nothing changing (those 20 stopped), ≤ 0.5 % of a
//!   core for the second;
//! - the supervisor's resident and proportional set size, RSS ≤ 64 MiB.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::fixture::{self, Layout, Shape, append};
use crate::process::{StopAll, cpu_ticks, run, run_timed, supervisor_pid, ticks_ms};
use crate::stats::{median, ms};

/// Time `list`, `status`, state changes, view frames, and the
/// supervisor's CPU and memory with 200 sessions
#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// The tandem binary to measure
    #[arg(long)]
    tandem: PathBuf,
    /// Sessions
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Of them, agents that keep printing (ten lines a second)
    #[arg(long, default_value_t = 20)]
    printing: usize,
    /// Tracked files of the repository
    #[arg(long, default_value_t = 5_000)]
    files: usize,
    /// Its folders
    #[arg(long, default_value_t = 500)]
    dirs: usize,
    /// Timed runs of `list`, `status` and state changes
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Seconds each supervisor CPU figure is measured over
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
}

/// One figure: median, p99, min, max (ms unless said), its target.
struct Row {
    name: &'static str,
    samples: Vec<f64>,
    unit: &'static str,
    /// `(what, max)`: the median or p99 at most `max`.
    target: Option<(&'static str, f64)>,
    note: String,
}

fn p99(sorted: &[f64]) -> f64 {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

pub fn run_cmd(args: &ScaleArgs) -> Result<()> {
    let bin = std::path::absolute(&args.tandem)?;
    ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    ensure!(args.sessions >= 2 && args.printing < args.sessions, "--printing must be below --sessions");
    let temp = tempfile::Builder::new().prefix("tandem-bench-scale-").tempdir()?;
    let layout = Layout::new(temp.path())?;
    let tandem = layout.tandem(bin);
    let _stop = StopAll(&tandem);
    eprintln!("building a {}-file repository with {} sessions ...", args.files, args.sessions);
    fixture::build(&layout, Shape { files: args.files, dirs: args.dirs, sessions: 0 }, None)?;
    let repo = layout.repo();
    let tracked = run(crate::process::fixture_git(&repo).args(["ls-files"]))?;
    let tracked: Vec<&str> = tracked.lines().collect();
    let output = temp.path().join("output.txt");
    crate::agents::coloured_file(&output, 0.3)?;
    // A `claude` that does nothing: the bench plays its hooks.
    let fake = temp.path().join("fake-bin");
    std::fs::create_dir_all(&fake)?;
    std::fs::write(fake.join("claude"), "#!/bin/sh\nexec sleep 100000\n")?;
    std::fs::set_permissions(fake.join("claude"), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let path_var = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    run(&mut tandem.cmd(["daemon", "start"]))?;
    let made = Instant::now();
    let quiet = format!("sh -c 'cat {}; exec sleep 100000'", output.display());
    let loud = format!(
        "sh -c 'cat {}; while :; do echo \"$(date +%T.%N) compiling crate $$ of many\"; sleep 0.1; done'",
        output.display()
    );
    let mut worktrees = Vec::new();
    for i in 0..args.sessions {
        let name = format!("s{i:03}");
        let out = if i == 0 {
            run(tandem.cmd(["new", &name, "--bg", "--agent", "claude"]).env("PATH", &path_var))?
        } else {
            let agent = if i <= args.printing { &loud } else { &quiet };
            run(&mut tandem.cmd(["new", &name, "--bg", "--agent", agent]))?
        };
        let path = PathBuf::from(out.lines().last().and_then(|l| l.split_once('\t')).context("new's output")?.1);
        append(&path.join(tracked[i % tracked.len()]), format!("\n{name} was here\n").as_bytes())?;
        std::fs::write(path.join(format!("{name}-notes.txt")), "untracked\n")?;
        worktrees.push(path);
        if i % 50 == 49 {
            eprintln!("  {} sessions in {:.0} s", i + 1, made.elapsed().as_secs_f64());
        }
    }
    let listed: serde_json::Value = serde_json::from_str(&run(&mut tandem.cmd(["list", "--json"]))?)?;
    let ids: Vec<String> =
        listed.as_array().into_iter().flatten().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect();
    ensure!(ids.len() == args.sessions, "the supervisor lists {} of {} sessions", ids.len(), args.sessions);
    let paths = tandem.paths()?;
    crate::view::add_history(&paths, ids.iter().map(String::as_str))?;
    let supervisor = supervisor_pid(&tandem)?;
    eprintln!("waiting for the supervisor to settle ...");
    run(&mut tandem.cmd(["list"]))?;
    let settle = Instant::now();
    crate::process::wait_idle(supervisor, settle, cpu_ticks(supervisor).unwrap_or(0), Duration::from_secs(60))
        .or_else(|_| -> Result<_> {
            // The printing agents keep the supervisor a little busy: a
            // settled `list` (no git) is enough.
            Ok(crate::process::Settled { until_idle: settle.elapsed(), cpu_ms: 0.0 })
        })?;
    for _ in 0..3 {
        run(&mut tandem.cmd(["list"]))?;
    }

    let mut rows = Vec::new();
    // list warm and status first, then the baseline: its `git status`
    // refreshes and rewrites each worktree's index, an event in every
    // worktree, so a `list` right after one recomputes them all (which
    // the user pays when they run git in every worktree, not otherwise).
    eprintln!("measuring list and status ...");
    let (mut list, mut base, mut status) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        list.push(ms(run_timed(&mut tandem.cmd(["list"]), None)?.1));
        status.push(ms(run_timed(&mut tandem.cmd(["status"]), None)?.1));
    }
    let input: String = worktrees.iter().map(|p| format!("{}\n", p.display())).collect();
    for _ in 0..args.runs.div_ceil(6) {
        let mut cmd = Command::new("xargs");
        cmd.arg(format!("-P{}", crate::bench::parallelism()))
            .args(["-I{}", "sh", "-c", crate::bench::LIST_BASELINE_SCRIPT])
            .current_dir(&repo)
            .env("LC_ALL", "C");
        base.push(ms(run_timed(&mut cmd, Some(input.as_bytes()))?.1));
    }
    // And the list that pays for it.
    let after_git = ms(run_timed(&mut tandem.cmd(["list"]), None)?.1);
    let status_json: serde_json::Value = serde_json::from_str(&run(&mut tandem.cmd(["daemon", "status", "--json"]))?)?;
    let w = &status_json["watches"];
    rows.push(Row {
        name: "list warm",
        samples: list,
        unit: "ms",
        target: Some(("median", 10.0)),
        note: format!(
            "baseline, git status + rev-list of every worktree, xargs -P{}: {:.1} ms median ({} runs); the first list after it (every index rewritten): {after_git:.1} ms; watches {} of {}, {} worktrees polled",
            crate::bench::parallelism(),
            median(&base).unwrap_or(f64::NAN),
            base.len(),
            w["used"],
            w["cap"],
            w["polled"].as_array().map_or(0, Vec::len)
        ),
    });
    rows.push(Row { name: "status", samples: status, unit: "ms", target: Some(("median", 5.0)), note: String::new() });

    eprintln!("measuring state changes ...");
    let id = {
        let listed: serde_json::Value = serde_json::from_str(&run(&mut tandem.cmd(["list", "--json"]))?)?;
        listed
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == "s000")
            .and_then(|r| r["id"].as_str().map(str::to_owned))
            .context("s000's id")?
    };
    let mut changes = Vec::new();
    for i in 0..args.runs {
        let (event, state) = if i % 2 == 0 { ("UserPromptSubmit", "running") } else { ("Stop", "idle") };
        let payload = serde_json::json!({ "hook_event_name": event, "prompt": "go", "last_assistant_message": "done" });
        let start = Instant::now();
        crate::agents::send_hook(&tandem, &id, &payload)?;
        let deadline = start + Duration::from_secs(10);
        loop {
            let listed: serde_json::Value = serde_json::from_str(&run(&mut tandem.cmd(["list", "--json"]))?)?;
            let shown = listed.as_array().into_iter().flatten().any(|r| r["name"] == "s000" && r["state"] == state);
            if shown {
                break;
            }
            ensure!(Instant::now() < deadline, "s000 did not show {state} within 10 s");
        }
        changes.push(ms(start.elapsed()));
    }
    rows.push(Row {
        name: "state change in list",
        samples: changes,
        unit: "ms",
        target: Some(("p99", 50.0)),
        note: "from `tandem hook` starting until a `tandem list --json` shows the state (lists in a loop)".into(),
    });

    eprintln!("measuring view frames ...");
    let frames = crate::view::time_frames(&tandem, &repo, args.runs.max(100), 200, 60)?;
    let (moved, pushed, loaded) = (frames.moved, frames.pushed, frames.loaded);
    rows.push(Row {
        name: "view: selection moved",
        samples: moved,
        unit: "ms",
        target: Some(("p99", 8.0)),
        note: String::new(),
    });
    rows.push(Row {
        name: "view: change + selection",
        samples: pushed,
        unit: "ms",
        target: Some(("p99", 8.0)),
        note: "the model rebuilt from rows read again, history and a 256 KiB preview replayed, drawn".into(),
    });
    rows.push(Row {
        name: "view: rows read",
        samples: loaded,
        unit: "ms",
        target: None,
        note: "on every pushed change, on the view's loader thread (off the frame): live and archived rows from the supervisor, with last messages".into(),
    });

    eprintln!("measuring the supervisor's CPU over {} s, agents printing ...", args.idle_secs);
    let cpu = |secs: u64| -> Result<f64> {
        let before = cpu_ticks(supervisor).context("supervisor CPU")?;
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let used = ticks_ms(cpu_ticks(supervisor).context("supervisor CPU")? - before);
        Ok(used / ms(start.elapsed()) * 100.0)
    };
    let printing = cpu(args.idle_secs)?;
    rows.push(Row {
        name: "supervisor CPU, printing",
        samples: vec![printing],
        unit: "%",
        target: None,
        note: format!("{} agents printing ten lines a second; % of one core", args.printing),
    });
    for i in 1..=args.printing {
        run(&mut tandem.cmd(["stop", &format!("s{i:03}")]))?;
    }
    run(&mut tandem.cmd(["list"]))?;
    crate::process::wait_idle(
        supervisor,
        Instant::now(),
        cpu_ticks(supervisor).unwrap_or(0),
        Duration::from_secs(120),
    )?;
    eprintln!("measuring the supervisor's CPU over {} s, nothing changing ...", args.idle_secs);
    let still = cpu(args.idle_secs)?;
    rows.push(Row {
        name: "supervisor CPU, still",
        samples: vec![still],
        unit: "%",
        target: Some(("median", 0.5)),
        note: "nothing changing; % of one core".into(),
    });
    let field = |file: &str, key: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{supervisor}/{file}"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()))
            })
            .unwrap_or(f64::NAN)
    };
    let rss = field("status", "VmRSS:") / 1024.0;
    let pss = field("smaps_rollup", "Pss:") / 1024.0;
    rows.push(Row {
        name: "supervisor RSS",
        samples: vec![rss],
        unit: "MiB",
        target: Some(("median", 64.0)),
        note: format!("PSS {pss:.1} MiB"),
    });

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} sessions ({} printing), {} files in {} folders, every worktree dirty",
        args.sessions, args.printing, args.files, args.dirs
    );
    let _ = writeln!(out, "{:<26} {:>12} {:>12} {:>12} {:>12}   result", "", "median", "p99", "min", "max");
    for row in &mut rows {
        row.samples.sort_by(f64::total_cmp);
        let (mid, high) = (median(&row.samples).unwrap_or(f64::NAN), p99(&row.samples));
        let result = match row.target {
            Some((which, max)) => {
                let value = if which == "p99" { high } else { mid };
                format!("{which} ≤ {max} {}: {}", row.unit, if value <= max { "ok" } else { "MISSED" })
            }
            None => "(printed)".to_owned(),
        };
        let u = row.unit;
        let _ = writeln!(
            out,
            "{:<26} {:>9.2} {u:<2} {:>9.2} {u:<2} {:>9.2} {u:<2} {:>9.2} {u:<2}   {result}",
            row.name,
            mid,
            high,
            row.samples[0],
            row.samples[row.samples.len() - 1]
        );
    }
    for row in &rows {
        if !row.note.is_empty() {
            let _ = writeln!(out, "  {}: {}", row.name, row.note);
        }
    }
    print!("{out}");
    Ok(())
}
