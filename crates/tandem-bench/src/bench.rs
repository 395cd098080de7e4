//! `tandem-bench run`: tandem against the plain-git commands it wraps, on
//! the same fixture, alternating the two sides run by run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::fixture::{self, Fixture, Layout, Shape};
use crate::process::{StopAll, Tandem, git, run, run_timed};
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

/// The script the `list` baseline runs per worktree, two worktrees at a time.
const LIST_BASELINE_SCRIPT: &str =
    "git -C {} status --porcelain=v2 >/dev/null && git -C {} rev-list --left-right --count main...HEAD >/dev/null";

/// What a comparison must reach.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Target {
    /// tandem's median at most `max` times the baseline's.
    Ratio { max: f64 },
    /// tandem's median at most `max_ms` milliseconds.
    Millis { max_ms: f64 },
}

impl Target {
    fn met(self, tandem_ms: f64, baseline_ms: f64) -> bool {
        match self {
            Target::Ratio { max } => tandem_ms <= max * baseline_ms,
            Target::Millis { max_ms } => tandem_ms <= max_ms,
        }
    }

    fn text(self) -> String {
        match self {
            Target::Ratio { max } => format!("≤ {max:.2}×"),
            Target::Millis { max_ms } => format!("≤ {max_ms:.0} ms"),
        }
    }
}

/// One line of the report; times in milliseconds.
#[derive(Debug, Serialize)]
struct Comparison {
    name: &'static str,
    /// What the baseline column measures.
    baseline: &'static str,
    tandem_ms: Vec<f64>,
    baseline_ms: Vec<f64>,
    tandem_median_ms: f64,
    baseline_median_ms: f64,
    /// tandem median / baseline median.
    ratio: f64,
    target: Target,
    met: bool,
}

impl Comparison {
    fn new(
        name: &'static str,
        baseline: &'static str,
        tandem_ms: Vec<f64>,
        baseline_ms: Vec<f64>,
        target: Target,
    ) -> Self {
        let t = median(&tandem_ms).unwrap_or(f64::NAN);
        let b = median(&baseline_ms).unwrap_or(f64::NAN);
        Comparison {
            name,
            baseline,
            tandem_ms,
            baseline_ms,
            tandem_median_ms: t,
            baseline_median_ms: b,
            ratio: t / b,
            target,
            met: target.met(t, b),
        }
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
        comparisons.push(bench.measure_new()?);
    }
    if wanted("rm") {
        comparisons.push(bench.measure_rm()?);
    }
    if wanted("list") && bench.fixture.sessions.is_empty() {
        eprintln!("note: the fixture has no sessions; list is not measured");
    } else if wanted("list") {
        let cold = bench.measure_list_cold()?;
        let changed = bench.measure_list_all_changed()?;
        let warm = bench.measure_list_warm(cold.baseline_ms.clone())?;
        comparisons.extend([cold, changed, warm]);
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

/// The report as a table with a closing verdict line.
fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} runs each, medians; fixture {}", report.runs, report.fixture.display());
    let _ = writeln!(out, "{:<14} {:>12} {:>12} {:>8}   {:<9} result", "", "tandem", "baseline", "ratio", "target");
    for c in &report.comparisons {
        let _ = writeln!(
            out,
            "{:<14} {:>9.1} ms {:>9.1} ms {:>7.2}×   {:<9} {}",
            c.name,
            c.tandem_median_ms,
            c.baseline_median_ms,
            c.ratio,
            c.target.text(),
            if c.met { "ok" } else { "MISSED" }
        );
    }
    for c in &report.comparisons {
        let _ = writeln!(out, "  {}: baseline = {}", c.name, c.baseline);
    }
    let met: Vec<&str> = report.comparisons.iter().filter(|c| c.met).map(|c| c.name).collect();
    let missed: Vec<&str> = report.comparisons.iter().filter(|c| !c.met).map(|c| c.name).collect();
    let _ = writeln!(
        out,
        "targets met: {} of {} ({}); missed: {}",
        met.len(),
        report.comparisons.len(),
        if met.is_empty() { "none".to_owned() } else { met.join(", ") },
        if missed.is_empty() { "none".to_owned() } else { missed.join(", ") }
    );
    out
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

    fn tandem_rm(&self, name: &str) -> Result<Duration> {
        Ok(run_timed(&mut self.tandem.cmd(["rm", name]), None)?.1)
    }

    /// `tandem rm NAME` timed, then an untimed wait until what it leaves
    /// to the background is done (the branch deleted, its worktree gone
    /// from the trash beside `path`), so that neither slows nor blocks what
    /// is timed next.
    fn tandem_rm_settled(&self, name: &str, path: &Path) -> Result<Duration> {
        let trash = path.parent().map(|p| p.join(".trash")).unwrap_or_default();
        let entries = || -> std::collections::HashSet<PathBuf> {
            std::fs::read_dir(&trash).into_iter().flatten().flatten().map(|e| e.path()).collect()
        };
        let before = entries();
        let took = self.tandem_rm(name)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let branch = run(git(&self.repo()).args(["branch", "--list", name]))?;
            if branch.trim().is_empty() && entries().is_subset(&before) {
                return Ok(took);
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "tandem rm {name} did not finish in 300 s");
            std::thread::sleep(Duration::from_millis(50));
        }
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

    /// `tandem new` vs `git worktree add`, clean-up untimed.
    fn measure_new(&self) -> Result<Comparison> {
        eprintln!("measuring new ...");
        // Warm caches (and the supervisor) on both sides first.
        let (path, _) = self.tandem.new_session("bench-warm")?;
        self.tandem_rm_settled("bench-warm", &path)?;
        let (path, _) = self.git_add("bench-warm")?;
        self.git_remove(&path)?;
        self.git_delete_branch("bench-warm")?;

        let (mut t, mut b) = (Vec::new(), Vec::new());
        for i in 0..self.runs {
            let name = format!("bench-new-t{i}");
            let (path, took) = self.tandem.new_session(&name)?;
            t.push(ms(took));
            self.tandem_rm_settled(&name, &path)?;

            let name = format!("bench-new-g{i}");
            let (path, took) = self.git_add(&name)?;
            b.push(ms(took));
            self.git_remove(&path)?;
            self.git_delete_branch(&name)?;
        }
        Ok(Comparison::new("new", "git worktree add -b NAME PATH main", t, b, Target::Ratio { max: 1.05 }))
    }

    /// `tandem rm` of a fresh clean session vs `git worktree remove --force`
    /// of a fresh worktree; creation untimed.
    fn measure_rm(&self) -> Result<Comparison> {
        eprintln!("measuring rm ...");
        let (mut t, mut b) = (Vec::new(), Vec::new());
        for i in 0..self.runs {
            let name = format!("bench-rm-t{i}");
            let (path, _) = self.tandem.new_session(&name)?;
            // Untimed: let the supervisor learn the new worktree (its
            // facts and watches), as it has for any session not made a
            // moment ago.
            std::thread::sleep(Duration::from_secs(2));
            t.push(ms(self.tandem_rm_settled(&name, &path)?));

            let name = format!("bench-rm-g{i}");
            let (path, _) = self.git_add(&name)?;
            b.push(ms(self.git_remove(&path)?));
            self.git_delete_branch(&name)?;
        }
        Ok(Comparison::new("rm", "git worktree remove --force PATH", t, b, Target::Ratio { max: 0.02 }))
    }

    /// `tandem list` with no cache at all (the supervisor stopped before
    /// each run, untimed; the timed run starts a new one) vs status +
    /// ahead/behind of every session with `xargs -P2`. After each tandem
    /// run the supervisor sets up its inotify watches in the background;
    /// the bench waits for that to finish before the baseline runs.
    fn measure_list_cold(&self) -> Result<Comparison> {
        eprintln!("measuring list (cold: no cache, new supervisor) ...");
        // Warm the page cache for both sides.
        self.tandem_list()?;
        self.list_baseline()?;
        let (mut t, mut b) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            self.tandem.stop_daemon();
            t.push(ms(self.tandem_list()?));
            std::thread::sleep(Duration::from_secs(3));
            b.push(ms(self.list_baseline()?));
        }
        Ok(Comparison::new(
            "list cold",
            "git status + rev-list per session, xargs -P2",
            t,
            b,
            Target::Ratio { max: 1.0 },
        ))
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
        Ok(Comparison::new(
            "list all changed",
            "git status + rev-list per session, xargs -P2",
            t,
            b,
            Target::Ratio { max: 1.0 },
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
        ))
    }

    fn tandem_list(&self) -> Result<Duration> {
        Ok(run_timed(&mut self.tandem.cmd(["list"]), None)?.1)
    }

    /// `printf '%s\n' WORKTREES | xargs -P2 -I{} sh -c SCRIPT`, with the
    /// worktree list fed straight to xargs' stdin.
    fn list_baseline(&self) -> Result<Duration> {
        let mut input = String::new();
        for s in &self.fixture.sessions {
            let path = s.path.to_str().with_context(|| format!("{} is not UTF-8", s.path.display()))?;
            input.push_str(path);
            input.push('\n');
        }
        let mut cmd = Command::new("xargs");
        cmd.args(["-P2", "-I{}", "sh", "-c", LIST_BASELINE_SCRIPT]).current_dir(self.repo()).env("LC_ALL", "C");
        Ok(run_timed(&mut cmd, Some(input.as_bytes()))?.1)
    }
}
