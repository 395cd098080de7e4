//! `tandem-bench run`: tandem against the plain-git commands it wraps, on
//! the same fixture, alternating the two sides run by run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::fixture::{self, Fixture, Layout, Shape};
use crate::process::{
    Settled, StopAll, Tandem, cpu_ticks, drop_caches, git, run, run_timed, supervisor_pid, wait_idle,
};
use crate::stats::{median, ms};

/// Compare tandem with plain git: new, rm, and list cold and warm
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The tandem binary to measure
    #[arg(long)]
    tandem: PathBuf,
    /// Fixture folder: reused when it holds one, else built there (default:
    /// a temporary folder, removed afterwards)
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Tracked files in a newly built fixture [default: 28000]
    #[arg(long)]
    files: Option<usize>,
    /// Folders in a newly built fixture [default: 3000]
    #[arg(long)]
    dirs: Option<usize>,
    /// Sessions in a newly built fixture; `list` is measured over them
    /// [default: 50]
    #[arg(long)]
    sessions: Option<usize>,
    /// Timed runs of each side of each comparison
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Print the results as JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Measure only these comparisons (comma-separated): new, rm, list
    /// (cold, all changed and warm) [default: all]
    #[arg(long, value_delimiter = ',', value_parser = ["new", "rm", "list"])]
    only: Vec<String>,
}

/// The fixture `run` builds when given none.
const DEFAULT_SHAPE: Shape = Shape { files: 28_000, dirs: 3_000, sessions: 50 };

/// The script the `list` baseline runs per worktree, as many worktrees at
/// a time as tandem's facts pool ([`parallelism`]).
pub(crate) const LIST_BASELINE_SCRIPT: &str =
    "git -C {} status --porcelain=v2 >/dev/null && git -C {} rev-list --left-right --count main...HEAD >/dev/null";

/// What a comparison must reach.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Target {
    /// tandem's median at most `max` times the baseline's.
    Ratio { max: f64 },
    /// tandem's median at most `max_ms` milliseconds.
    Millis { max_ms: f64 },
    /// No target: printed beside the others for the whole cost.
    Printed,
}

impl Target {
    fn met(self, tandem_ms: f64, baseline_ms: f64) -> bool {
        match self {
            Target::Ratio { max } => tandem_ms <= max * baseline_ms,
            Target::Millis { max_ms } => tandem_ms <= max_ms,
            Target::Printed => true,
        }
    }

    fn text(self) -> String {
        match self {
            Target::Ratio { max } => format!("≤ {max:.2}×"),
            Target::Millis { max_ms } => format!("≤ {max_ms:.0} ms"),
            Target::Printed => "(printed)".to_owned(),
        }
    }
}

/// One line of the report; times in milliseconds.
#[derive(Debug, Serialize)]
struct Comparison {
    name: &'static str,
    /// What the baseline column measures.
    baseline: String,
    tandem_ms: Vec<f64>,
    baseline_ms: Vec<f64>,
    tandem_median_ms: f64,
    baseline_median_ms: f64,
    /// tandem median / baseline median.
    ratio: f64,
    target: Target,
    met: bool,
    /// What else the user pays, said beside the figure (the supervisor's
    /// CPU in the background, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl Comparison {
    fn new(
        name: &'static str,
        baseline: impl Into<String>,
        tandem_ms: Vec<f64>,
        baseline_ms: Vec<f64>,
        target: Target,
    ) -> Self {
        let t = median(&tandem_ms).unwrap_or(f64::NAN);
        let b = median(&baseline_ms).unwrap_or(f64::NAN);
        Comparison {
            name,
            baseline: baseline.into(),
            tandem_ms,
            baseline_ms,
            tandem_median_ms: t,
            baseline_median_ms: b,
            ratio: t / b,
            target,
            met: target.met(t, b),
            note: None,
        }
    }

    fn with_note(mut self, note: String) -> Self {
        self.note = Some(note);
        self
    }
}

/// The whole result, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    fixture: PathBuf,
    /// Whether the fixture was built by this run (else reused).
    built: bool,
    shape: Shape,
    index_bytes: u64,
    tree_bytes: u64,
    build_ms: f64,
    runs: u32,
    comparisons: Vec<Comparison>,
    all_met: bool,
}

pub fn run_cmd(args: &RunArgs) -> Result<()> {
    let bin = std::path::absolute(&args.tandem)?;
    anyhow::ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    // Declared before the guard, so the daemon stops before the folder goes.
    let temp;
    let root = match &args.fixture {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("tandem-bench-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let layout = Layout::new(&root)?;
    let tandem = layout.tandem(bin.clone());
    let _stop = StopAll(&tandem);

    let built = !layout.marker().exists();
    let fixture = if built {
        let shape = Shape {
            files: args.files.unwrap_or(DEFAULT_SHAPE.files),
            dirs: args.dirs.unwrap_or(DEFAULT_SHAPE.dirs),
            sessions: args.sessions.unwrap_or(DEFAULT_SHAPE.sessions),
        };
        eprintln!("building fixture in {} ...", layout.root.display());
        fixture::build(&layout, shape, Some(&bin))?
    } else {
        if args.files.is_some() || args.dirs.is_some() || args.sessions.is_some() {
            eprintln!("note: reusing the fixture as built; --files, --dirs and --sessions are ignored");
        }
        Fixture::load(&layout)?
    };
    eprintln!("{}", fixture.summary(&layout));

    let bench = Bench { layout, tandem: tandem.clone(), fixture, runs: args.runs };
    run(&mut tandem.cmd(["daemon", "start"]))?;
    bench.remove_leftovers()?;
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut comparisons = Vec::new();
    if wanted("new") {
        comparisons.extend(bench.measure_new()?);
        comparisons.extend(bench.measure_new_pooled()?);
    }
    if wanted("rm") {
        comparisons.extend(bench.measure_rm()?);
    }
    if wanted("list") && bench.fixture.sessions.is_empty() {
        eprintln!("note: the fixture has no sessions; list is not measured");
    } else if wanted("list") {
        let cold = bench.measure_list_cold(false)?;
        let cold_baseline = cold[0].baseline_ms.clone();
        comparisons.extend(cold);
        if drop_caches() {
            comparisons.extend(bench.measure_list_cold(true)?);
        } else {
            eprintln!("note: cannot drop the page cache here (not root?); the cache-cold list rows are not measured");
        }
        comparisons.push(bench.measure_list_all_changed()?);
        comparisons.push(bench.measure_list_warm(cold_baseline)?);
    }

    let report = Report {
        fixture: bench.layout.root.clone(),
        built,
        shape: bench.fixture.shape,
        index_bytes: bench.fixture.index_bytes,
        tree_bytes: bench.fixture.tree_bytes,
        build_ms: bench.fixture.build_ms(),
        runs: args.runs,
        all_met: comparisons.iter().all(|c| c.met),
        comparisons,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// The report as a table with a closing verdict line: each side's
/// median and its min–max over the runs.
fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} runs each, medians (min–max); fixture {}", report.runs, report.fixture.display());
    let w = report.comparisons.iter().map(|c| c.name.chars().count()).max().unwrap_or(0).max(22);
    let _ =
        writeln!(out, "{:<w$} {:>24} {:>24} {:>8}   {:<10} result", "", "tandem ms", "baseline ms", "ratio", "target");
    let spread = |v: &[f64], mid: f64| {
        if v.is_empty() {
            return String::new();
        }
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        format!("{mid:.1} ({min:.1}–{max:.1})")
    };
    for c in &report.comparisons {
        let _ = writeln!(
            out,
            "{:<w$} {:>24} {:>24} {:>7.2}×   {:<10} {}",
            c.name,
            spread(&c.tandem_ms, c.tandem_median_ms),
            spread(&c.baseline_ms, c.baseline_median_ms),
            c.ratio,
            c.target.text(),
            match c.target {
                Target::Printed => "",
                _ if c.met => "ok",
                _ => "MISSED",
            }
        );
    }
    for c in &report.comparisons {
        let _ = writeln!(out, "  {}: baseline = {}", c.name, c.baseline);
        if let Some(note) = &c.note {
            let _ = writeln!(out, "    {note}");
        }
    }
    let targeted = || report.comparisons.iter().filter(|c| !matches!(c.target, Target::Printed));
    let met: Vec<&str> = targeted().filter(|c| c.met).map(|c| c.name).collect();
    let missed: Vec<&str> = targeted().filter(|c| !c.met).map(|c| c.name).collect();
    let _ = writeln!(
        out,
        "targets met: {} of {} ({}); missed: {}",
        met.len(),
        met.len() + missed.len(),
        if met.is_empty() { "none".to_owned() } else { met.join(", ") },
        if missed.is_empty() { "none".to_owned() } else { missed.join(", ") }
    );
    out
}

/// What [`Bench::new_runs`] measured, ms: `new` until it returns, until
/// the supervisor is idle, the supervisor's CPU meanwhile, `git worktree
/// add`; and how many `new`s took a pooled worktree.
#[derive(Default)]
struct NewRuns {
    t: Vec<f64>,
    settled: Vec<f64>,
    cpu: Vec<f64>,
    b: Vec<f64>,
    taken: u32,
}

/// A fixture, the tandem under test, and how many runs per side.
struct Bench {
    layout: Layout,
    tandem: Tandem,
    fixture: Fixture,
    runs: u32,
}

impl Bench {
    fn repo(&self) -> PathBuf {
        self.layout.repo()
    }

    /// `git worktree add -b NAME PATH main` beside the repository; returns
    /// the path and the time taken.
    fn git_add(&self, name: &str) -> Result<(PathBuf, Duration)> {
        let path = self.layout.baseline_worktrees().join(name);
        let (_, took) =
            run_timed(git(&self.repo()).args(["worktree", "add", "-b", name]).arg(&path).arg("main"), None)?;
        Ok((path, took))
    }

    /// `git worktree remove --force PATH`; returns the time taken.
    fn git_remove(&self, path: &Path) -> Result<Duration> {
        Ok(run_timed(git(&self.repo()).args(["worktree", "remove", "--force"]).arg(path), None)?.1)
    }

    fn git_delete_branch(&self, name: &str) -> Result<()> {
        run(git(&self.repo()).args(["branch", "-q", "-D", name])).map(drop)
    }

    /// `tandem rm NAME` timed twice from one start: until it returns, and
    /// until what it leaves to the background is done too (the branch
    /// deleted, its worktree gone from the trash beside `path`).
    fn tandem_rm_settled(&self, name: &str, path: &Path) -> Result<(Duration, Duration)> {
        let trash = path.parent().map(|p| p.join(".trash")).unwrap_or_default();
        let entries = || -> std::collections::HashSet<PathBuf> {
            std::fs::read_dir(&trash).into_iter().flatten().flatten().map(|e| e.path()).collect()
        };
        let branch = self.repo().join(".git/refs/heads").join(name);
        let before = entries();
        let start = Instant::now();
        run(&mut self.tandem.cmd(["rm", name]))?;
        let returned = start.elapsed();
        let deadline = start + Duration::from_secs(300);
        loop {
            // The loose ref's file, not `git branch --list`: a git process
            // per look would take the CPU the deletion needs. Fixture
            // branches are loose (never packed).
            if !branch.exists() && entries().is_subset(&before) {
                return Ok((returned, start.elapsed()));
            }
            anyhow::ensure!(Instant::now() < deadline, "tandem rm {name} did not finish in 300 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until the supervisor is idle, from `start` (when a command
    /// began) with its CPU counted from `ticks`.
    fn settle(&self, start: Instant, ticks: u64) -> Result<Settled> {
        let pid = supervisor_pid(&self.tandem)?;
        wait_idle(pid, start, ticks, Duration::from_secs(300))
    }

    /// Removes the sessions, worktrees and branches named `bench-*` that an
    /// interrupted run may have left, so names are free and `list` sees only
    /// the fixture's sessions.
    fn remove_leftovers(&self) -> Result<()> {
        let listed: serde_json::Value = serde_json::from_str(&run(&mut self.tandem.cmd(["list", "--json"]))?)?;
        let names = listed.as_array().into_iter().flatten().filter_map(|row| row["name"].as_str());
        for name in names.filter(|n| n.starts_with("bench-")) {
            eprintln!("removing session {name} left by an earlier run");
            run(&mut self.tandem.cmd(["rm", "--force", name]))?;
        }
        let Ok(entries) = std::fs::read_dir(self.layout.baseline_worktrees()) else { return Ok(()) };
        for entry in entries {
            let path = entry?.path();
            eprintln!("removing worktree {} left by an earlier run", path.display());
            if run(git(&self.repo()).args(["worktree", "remove", "--force"]).arg(&path)).is_err() {
                // Not (or no longer) a registered worktree: just a folder.
                std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        run(git(&self.repo()).args(["worktree", "prune"]))?;
        let branches = run(git(&self.repo()).args(["branch", "--list", "--format=%(refname:short)", "bench-*"]))?;
        for branch in branches.lines() {
            self.git_delete_branch(branch)?;
        }
        Ok(())
    }

    /// `tandem new` vs `git worktree add`, clean-up untimed; twice from
    /// one start: until `new` returns, and until the supervisor is idle
    /// again (the background `warm`: facts, inotify watches, facts again).
    fn measure_new(&self) -> Result<Vec<Comparison>> {
        eprintln!("measuring new ...");
        // Warm caches (and the supervisor) on both sides first.
        let (path, _) = self.tandem.new_session("bench-warm")?;
        self.tandem_rm_settled("bench-warm", &path)?;
        let (path, _) = self.git_add("bench-warm")?;
        self.git_remove(&path)?;
        self.git_delete_branch("bench-warm")?;

        let NewRuns { t, settled, cpu, b, .. } = self.new_runs("bench-new")?;
        let cpu_note = cpu_note("the supervisor's CPU (with its git children) from `new` until idle", &cpu);
        Ok(vec![
            Comparison::new(
                "new, no pool (returns)",
                "git worktree add -b NAME PATH main",
                t,
                b.clone(),
                Target::Printed,
            ),
            Comparison::new(
                "new, no pool (supervisor idle)",
                "git worktree add -b NAME PATH main (no background work)",
                settled,
                b,
                Target::Printed,
            )
            .with_note(cpu_note),
        ])
    }

    /// `tandem new` with `[worktrees] pool = 1` (issue 23) vs `git
    /// worktree add`: `new` takes the pooled worktree (a move and a `git
    /// switch`), and the supervisor makes the next one in the background
    /// at the lowest priority, a whole checkout, which "until idle" and
    /// its CPU count. The pool is turned off and emptied (`tandem gc`)
    /// after, so the other rows see none.
    fn measure_new_pooled(&self) -> Result<Vec<Comparison>> {
        eprintln!("measuring new from the worktree pool ...");
        let config = self.layout.home().join("config/config.toml");
        let before = std::fs::read_to_string(&config).ok();
        std::fs::create_dir_all(config.parent().context("config dir")?)?;
        std::fs::write(&config, format!("{}\n[worktrees]\npool = 1\n", before.as_deref().unwrap_or_default()))?;
        let measured = self.new_pooled_runs();
        match &before {
            Some(text) => std::fs::write(&config, text)?,
            None => std::fs::remove_file(&config)?,
        }
        run(&mut self.tandem.cmd(["gc"]))?;
        let pid = supervisor_pid(&self.tandem)?;
        self.settle(Instant::now(), cpu_ticks(pid).unwrap_or(0))?;
        measured
    }

    fn new_pooled_runs(&self) -> Result<Vec<Comparison>> {
        // The first `new` finds the pool empty and fills it.
        let pid = supervisor_pid(&self.tandem)?;
        let (path, _) = self.tandem.new_session("bench-warm")?;
        self.settle(Instant::now(), cpu_ticks(pid).unwrap_or(0))?;
        self.tandem_rm_settled("bench-warm", &path)?;
        self.settle(Instant::now(), cpu_ticks(pid).unwrap_or(0))?;

        let NewRuns { t, settled, cpu, b, taken } = self.new_runs("bench-pool")?;
        let note = format!(
            "{taken} of {} runs took a pooled worktree; {}",
            self.runs,
            cpu_note(
                "the supervisor's CPU (with its git children: the refill's whole checkout) from `new` until idle",
                &cpu
            )
        );
        Ok(vec![
            Comparison::new(
                "new, pool = 1 (returns)",
                "git worktree add -b NAME PATH main",
                t,
                b.clone(),
                Target::Ratio { max: 0.1 },
            ),
            Comparison::new(
                "new, pool = 1 (pool refilled, supervisor idle)",
                "git worktree add -b NAME PATH main (no background work)",
                settled,
                b,
                Target::Printed,
            )
            .with_note(note),
        ])
    }

    /// `self.runs` times, alternating: `tandem new PREFIX-tN` timed until
    /// it returns and until the supervisor is idle (with its CPU), then
    /// removed untimed; `git worktree add` of `PREFIX-gN`, then removed.
    fn new_runs(&self, prefix: &str) -> Result<NewRuns> {
        let mut runs = NewRuns::default();
        let pid = supervisor_pid(&self.tandem)?;
        for i in 0..self.runs {
            let name = format!("{prefix}-t{i}");
            let ticks = cpu_ticks(pid).context("the supervisor's CPU time")?;
            let start = Instant::now();
            let (path, took) = self.tandem.new_session(&name)?;
            runs.t.push(ms(took));
            let idle = self.settle(start, ticks)?;
            runs.settled.push(ms(idle.until_idle.max(took)));
            runs.cpu.push(idle.cpu_ms);
            // A pooled worktree keeps the admin folder name it was made
            // with (`p` and 8 hex digits), not the session's.
            let dotgit = std::fs::read_to_string(path.join(".git")).unwrap_or_default();
            if !dotgit.trim_end().ends_with(&format!("/{name}")) {
                runs.taken += 1;
            }
            self.tandem_rm_settled(&name, &path)?;
            self.settle(Instant::now(), cpu_ticks(pid).unwrap_or(0))?;

            let name = format!("{prefix}-g{i}");
            let (path, took) = self.git_add(&name)?;
            runs.b.push(ms(took));
            self.git_remove(&path)?;
            self.git_delete_branch(&name)?;
        }
        Ok(runs)
    }

    /// `tandem rm` of a clean session that the supervisor has settled on
    /// vs `git worktree remove --force` of a fresh worktree; creation
    /// untimed. Twice from one start: until `rm` returns, and until the
    /// branch is gone and the trash empty.
    fn measure_rm(&self) -> Result<Vec<Comparison>> {
        eprintln!("measuring rm ...");
        let (mut t, mut settled, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..self.runs {
            let name = format!("bench-rm-t{i}");
            let pid = supervisor_pid(&self.tandem)?;
            let ticks = cpu_ticks(pid).context("the supervisor's CPU time")?;
            let start = Instant::now();
            let (path, _) = self.tandem.new_session(&name)?;
            // Untimed: the supervisor learns the new worktree (its facts
            // and watches), as it has for any session not made a moment ago.
            self.settle(start, ticks)?;
            let (returned, done) = self.tandem_rm_settled(&name, &path)?;
            t.push(ms(returned));
            settled.push(ms(done));
            self.settle(Instant::now(), cpu_ticks(pid).unwrap_or(0))?;

            let name = format!("bench-rm-g{i}");
            let (path, _) = self.git_add(&name)?;
            b.push(ms(self.git_remove(&path)?));
            self.git_delete_branch(&name)?;
        }
        Ok(vec![
            Comparison::new(
                "rm (returns)",
                "git worktree remove --force PATH",
                t,
                b.clone(),
                Target::Ratio { max: 0.02 },
            ),
            Comparison::new(
                "rm (branch, trash gone)",
                "git worktree remove --force PATH (and the branch deleted untimed)",
                settled,
                b,
                Target::Printed,
            ),
        ])
    }

    /// `tandem list` with no cache at all (the supervisor stopped before
    /// each run, untimed; the timed run starts a new one) vs status +
    /// ahead/behind of every session with `xargs -P` as wide as tandem's
    /// own pool. Twice from one start: until `list` returns, and until the
    /// new supervisor is idle (its inotify watches set up); the baseline
    /// runs after that. With `drop`, the page cache is dropped before each
    /// run of either side (where permitted).
    fn measure_list_cold(&self, drop: bool) -> Result<Vec<Comparison>> {
        let what = if drop { "page cache dropped" } else { "new supervisor" };
        eprintln!("measuring list (cold: {what}) ...");
        // Warm the page cache for both sides.
        self.tandem_list()?;
        self.list_baseline()?;
        let (mut t, mut idle, mut cpu, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.runs {
            self.tandem.stop_daemon();
            anyhow::ensure!(!drop || drop_caches(), "cannot drop the page cache any more");
            let start = Instant::now();
            let took = self.tandem_list()?;
            t.push(ms(took));
            // The new supervisor's CPU from its first tick: all of it.
            let settled = self.settle(start, 0)?;
            idle.push(ms(settled.until_idle.max(took)));
            cpu.push(settled.cpu_ms);
            anyhow::ensure!(!drop || drop_caches(), "cannot drop the page cache any more");
            b.push(ms(self.list_baseline()?));
        }
        let name_returns = if drop { "list cache-cold" } else { "list cold" };
        let name_idle = if drop { "list cache-cold (idle)" } else { "list cold (idle)" };
        let baseline = baseline_text(drop);
        let cpu_note = cpu_note("the new supervisor's CPU (with its git children) until idle", &cpu);
        Ok(vec![
            Comparison::new(name_returns, baseline.clone(), t, b.clone(), Target::Ratio { max: 1.0 }),
            Comparison::new(name_idle, baseline, idle, b, Target::Printed).with_note(cpu_note),
        ])
    }

    /// `tandem list` right after every session's untracked file grew (the
    /// cache has to recompute every worktree) vs the same baseline.
    fn measure_list_all_changed(&self) -> Result<Comparison> {
        eprintln!("measuring list (every worktree changed) ...");
        let touch_all = || -> Result<()> {
            for s in &self.fixture.sessions {
                fixture::append(&s.untracked, b"x")?;
            }
            Ok(())
        };
        self.tandem_list()?;
        let (mut t, mut b) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            touch_all()?;
            t.push(ms(self.tandem_list()?));
            touch_all()?;
            b.push(ms(self.list_baseline()?));
        }
        Ok(Comparison::new("list all changed", baseline_text(false), t, b, Target::Ratio { max: 1.0 }).with_note(
            "every worktree's facts recomputed; ref facts stay cached (no ref moved), as they would after edits"
                .to_owned(),
        ))
    }

    /// `tandem list` with nothing changed since the last one; the baseline
    /// column repeats the cold baseline for reference.
    fn measure_list_warm(&self, cold_baseline_ms: Vec<f64>) -> Result<Comparison> {
        eprintln!("measuring list (warm) ...");
        self.tandem_list()?;
        let mut t = Vec::new();
        for _ in 0..self.runs {
            t.push(ms(self.tandem_list()?));
        }
        Ok(Comparison::new(
            "list warm",
            "the cold baseline, for reference",
            t,
            cold_baseline_ms,
            Target::Millis { max_ms: 20.0 },
        )
        .with_note(self.watch_note()?))
    }

    /// The supervisor's inotify budget as `daemon status --json` gives
    /// it: polled worktrees are read with git on every `list`.
    fn watch_note(&self) -> Result<String> {
        let status: serde_json::Value =
            serde_json::from_str(&run(&mut self.tandem.cmd(["daemon", "status", "--json"]))?)?;
        let w = &status["watches"];
        let polled = w["polled"].as_array().map_or(0, Vec::len);
        Ok(format!(
            "inotify watches {} of tandem's cap {} (fs.inotify.max_user_watches {}); {polled} of {} worktrees polled (read with git on every list)",
            w["used"],
            w["cap"],
            w["system_max"],
            self.fixture.sessions.len()
        ))
    }

    fn tandem_list(&self) -> Result<Duration> {
        Ok(run_timed(&mut self.tandem.cmd(["list"]), None)?.1)
    }

    /// `printf '%s\n' WORKTREES | xargs -PN -I{} sh -c SCRIPT` (N:
    /// [`parallelism`]), with the worktree list fed straight to xargs' stdin.
    fn list_baseline(&self) -> Result<Duration> {
        let mut input = String::new();
        for s in &self.fixture.sessions {
            let path = s.path.to_str().with_context(|| format!("{} is not UTF-8", s.path.display()))?;
            input.push_str(path);
            input.push('\n');
        }
        let mut cmd = Command::new("xargs");
        cmd.arg(format!("-P{}", parallelism()))
            .args(["-I{}", "sh", "-c", LIST_BASELINE_SCRIPT])
            .current_dir(self.repo())
            .env("LC_ALL", "C");
        Ok(run_timed(&mut cmd, Some(input.as_bytes()))?.1)
    }
}

/// How many worktrees tandem's facts pool scans at once
/// (`tandem_core::session::facts`: `available_parallelism()`, 2 when
/// unknown); the `list` baseline runs as many.
pub(crate) fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// `WHAT: M ms median (MIN–MAX)` for CPU times `cpu` in ms.
fn cpu_note(what: &str, cpu: &[f64]) -> String {
    let min = cpu.iter().copied().fold(f64::INFINITY, f64::min);
    let max = cpu.iter().copied().fold(0.0, f64::max);
    format!("{what}: {:.0} ms median ({min:.0}–{max:.0})", median(cpu).unwrap_or(f64::NAN))
}

/// What the `list` baselines run; `dropped`: with the page cache dropped first.
fn baseline_text(dropped: bool) -> String {
    let cache = if dropped { ", page cache dropped first" } else { "" };
    format!("git status + rev-list per session, xargs -P{}{cache}", parallelism())
}
