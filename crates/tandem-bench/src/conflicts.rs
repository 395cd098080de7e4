//! `tandem-bench conflicts`: `tandem conflicts` against one plain
//! `git merge-tree --write-tree --stdin` run over the same pairs of
//! committed branch heads, on a large fixture with many sessions (20 by
//! default: 190 pairs), some of which conflict.
//!
//! Each session commits an append to one of seven shared files (sessions
//! with the same file conflict) and to two files of its own. Measured,
//! alternating with the baseline run by run:
//! - `cold, clean`: `tandem conflicts --fresh` (nothing cached; every
//!   worktree clean), the target ≤ 1.2× the baseline;
//! - `warm, clean`: `tandem conflicts` with its answers cached;
//! - `cold, dirty`: `--fresh` again after each session made an uncommitted
//!   edit (snapshots included), printed beside the same baseline.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};

use crate::fixture::{self, Layout, Shape, append};
use crate::process::{StopAll, fixture_git, run, run_timed};
use crate::stats::median;

/// Time `tandem conflicts` against `git merge-tree --stdin`
#[derive(clap::Args, Debug)]
pub struct ConflictsArgs {
    /// The tandem binary to measure
    #[arg(long)]
    tandem: PathBuf,
    /// Sessions (pairs: n(n-1)/2)
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Tracked files in the fixture
    #[arg(long, default_value_t = 28_000)]
    files: usize,
    /// Folders in the fixture
    #[arg(long, default_value_t = 3_000)]
    dirs: usize,
    /// Timed runs of each side
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

/// How many shared files the sessions' conflicting edits go to.
const GROUPS: usize = 7;

/// The target for the clean, cold case: at most this times the baseline.
const TARGET: f64 = 1.2;

pub fn run_cmd(args: &ConflictsArgs) -> Result<()> {
    let bin = std::path::absolute(&args.tandem)?;
    ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    ensure!(args.sessions >= 2, "--sessions must be at least 2");
    let temp = tempfile::Builder::new().prefix("tandem-bench-conflicts-").tempdir()?;
    let layout = Layout::new(temp.path())?;
    let tandem = layout.tandem(bin);
    let _stop = StopAll(&tandem);
    eprintln!("building a fixture of {} files with {} sessions ...", args.files, args.sessions);
    let shape = Shape { files: args.files, dirs: args.dirs, sessions: 0 };
    fixture::build(&layout, shape, None)?;
    let repo = layout.repo();
    let files: Vec<String> = run(fixture_git(&repo).args(["ls-files"]))?.lines().map(str::to_owned).collect();
    ensure!(files.len() > GROUPS + 2 * args.sessions, "the fixture has too few files");
    run(&mut tandem.cmd(["daemon", "start"]))?;
    let mut worktrees = Vec::new();
    for i in 0..args.sessions {
        let name = format!("c{i:02}");
        let (path, _) = tandem.new_session_at(&name, "head")?;
        append(&path.join(&files[i % GROUPS]), format!("\n{name} was here\n").as_bytes())?;
        for k in 0..2 {
            let own = &files[GROUPS + 2 * i + k];
            append(&path.join(own), format!("\n{name}: own change {k}\n").as_bytes())?;
        }
        run(fixture_git(&path).args(["commit", "-q", "-am"]).arg(format!("{name}: changes")))?;
        run(&mut tandem.cmd(["stop", &name]))?;
        worktrees.push((name, path));
    }
    let heads: Vec<String> = worktrees
        .iter()
        .map(|(name, _)| run(fixture_git(&repo).args(["rev-parse", name])).map(|s| s.trim().to_owned()))
        .collect::<Result<_>>()?;
    let mut input = String::new();
    for i in 0..heads.len() {
        for j in i + 1..heads.len() {
            let _ = writeln!(input, "{} {}", heads[i], heads[j]);
        }
    }
    let pairs = heads.len() * (heads.len() - 1) / 2;
    let expected = expected_conflicts(args.sessions);

    // Warm the facts cache (every worktree watched, facts known) as a
    // supervisor that has been running has it.
    // Watches go in at the lowest priority and each one completed has its
    // worktree scanned once more; settled, a `list` runs no git and takes
    // a few milliseconds.
    let settle = std::time::Instant::now();
    loop {
        let (_, took) = run_timed(&mut tandem.cmd(["list"]), None)?;
        if took.as_millis() < 40 || settle.elapsed().as_secs() > 120 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let baseline = |out: &mut Vec<f64>| -> Result<usize> {
        let mut cmd = fixture_git(&repo);
        cmd.args(["merge-tree", "--write-tree", "--stdin", "--name-only", "--no-messages"]);
        let (stdout, took) = crate::process::run_timed_any_exit(&mut cmd, Some(input.as_bytes()))?;
        out.push(took.as_secs_f64() * 1000.0);
        Ok(count_conflicts(&stdout))
    };
    let tandem_run = |fresh: bool, out: &mut Vec<f64>| -> Result<serde_json::Value> {
        let args: &[&str] = if fresh { &["conflicts", "--json", "--fresh"] } else { &["conflicts", "--json"] };
        let (stdout, took) = run_timed(&mut tandem.cmd(args), None)?;
        out.push(took.as_secs_f64() * 1000.0);
        serde_json::from_str(&stdout).context("tandem conflicts --json")
    };

    let (mut base_ms, mut cold_ms, mut warm_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = (0, 0);
    for _ in 0..args.runs {
        seen.0 = baseline(&mut base_ms)?;
        let report = tandem_run(true, &mut cold_ms)?;
        seen.1 = conflicting_pairs(&report);
        tandem_run(false, &mut warm_ms)?;
    }
    ensure!(
        seen.0 == expected && seen.1 == expected,
        "expected {expected} conflicting pairs; git saw {}, tandem {}",
        seen.0,
        seen.1
    );

    // Dirty: one uncommitted edit per worktree, in its own file.
    for (i, (name, path)) in worktrees.iter().enumerate() {
        append(&path.join(&files[GROUPS + 2 * i]), format!("\n{name}: uncommitted\n").as_bytes())?;
    }
    let (mut dirty_base_ms, mut dirty_ms) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        baseline(&mut dirty_base_ms)?;
        tandem_run(true, &mut dirty_ms)?;
    }

    let m = |v: &[f64]| median(v).unwrap_or(f64::NAN);
    let (b, c, w) = (m(&base_ms), m(&cold_ms), m(&warm_ms));
    let (db, d) = (m(&dirty_base_ms), m(&dirty_ms));
    println!(
        "tandem conflicts: {} sessions, {pairs} pairs ({expected} conflicting), {} files, median of {} runs",
        args.sessions, args.files, args.runs
    );
    println!("{:<22} {:>12} {:>14} {:>8}  target", "case", "tandem ms", "merge-tree ms", "ratio");
    let line = |case: &str, t: f64, base: f64, target: Option<f64>| {
        let verdict = match target {
            Some(max) if t <= max * base => format!("≤ {max:.1}× met"),
            Some(max) => format!("≤ {max:.1}× MISSED"),
            None => "(printed)".to_owned(),
        };
        println!("{case:<22} {t:>12.1} {base:>14.1} {:>7.2}×  {verdict}", t / base);
    };
    line("cold, clean (--fresh)", c, b, Some(TARGET));
    line("warm, clean (cached)", w, b, None);
    line("cold, dirty (--fresh)", d, db, None);
    Ok(())
}

/// Pairs of sessions that edit the same shared file.
fn expected_conflicts(sessions: usize) -> usize {
    (0..GROUPS)
        .map(|g| {
            let n = (0..sessions).filter(|i| i % GROUPS == g).count();
            n * n.saturating_sub(1) / 2
        })
        .sum()
}

/// Conflicted merges in `git merge-tree --stdin` output: each answer is
/// `<status>NUL<tree>NUL(<path>NUL)*NUL`, status `0` conflicted.
fn count_conflicts(out: &str) -> usize {
    let mut fields = out.split('\0');
    let mut conflicted = 0;
    while let Some(status) = fields.next() {
        if status.is_empty() {
            break;
        }
        if status == "0" {
            conflicted += 1;
        }
        let _tree = fields.next();
        for f in fields.by_ref() {
            if f.is_empty() {
                break;
            }
        }
    }
    conflicted
}

fn conflicting_pairs(report: &serde_json::Value) -> usize {
    report["pairs"].as_array().map_or(0, |p| p.iter().filter(|p| !p["conflicts"].is_null()).count())
}
