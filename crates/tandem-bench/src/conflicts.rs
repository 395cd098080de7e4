//! `tandem-bench conflicts`: `tandem conflicts` against one plain
//! `git merge-tree --write-tree --stdin` run over the same pairs of
//! committed branch heads, on a large fixture with many sessions (20 by
//! default: 190 pairs), some of which conflict.
//!
//! Each session commits an append to one of seven shared files (sessions
//! with the same file conflict) and to two files of its own. Measured,
//! alternating with the baseline run by run:
//! - `fresh, clean`: `tandem conflicts --fresh` (no merge cached; every
//!   worktree clean, which a running supervisor knows from its warm facts
//!   cache), the target ≤ 1.2× the baseline;
//! - `new supervisor, clean`: `--fresh` right after the supervisor was
//!   stopped (no facts cached either: truly cold), printed;
//! - `cached, clean`: `tandem conflicts` with its answers cached, printed
//!   without a ratio (a cache hit is no match for a recompute);
//! - `fresh, dirty`: `--fresh` again after each session made an
//!   uncommitted edit (snapshots included), printed;
//! - `dirty, after restart`: `tandem conflicts` (cache allowed) with the
//!   agents stopped, after one supervisor restart: the common case of
//!   finished sessions, which no inotify watch covers until their worktree
//!   is watched again; target ≤ 2× the baseline.

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

/// The target for the clean, fresh case: at most this times the baseline.
const TARGET: f64 = 1.2;

/// The target for dirty worktrees after a supervisor restart (issue 23).
const DIRTY_TARGET: f64 = 2.0;

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

    let (mut base_ms, mut cold_ms, mut warm_ms, mut new_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
    let mut new_base_ms = Vec::new();
    for _ in 0..args.runs {
        baseline(&mut new_base_ms)?;
        tandem.stop_daemon();
        let report = tandem_run(true, &mut new_ms)?;
        ensure!(conflicting_pairs(&report) == expected, "a new supervisor found other conflicts");
    }

    // Dirty: one uncommitted edit per worktree, in its own file.
    for (i, (name, path)) in worktrees.iter().enumerate() {
        append(&path.join(&files[GROUPS + 2 * i]), format!("\n{name}: uncommitted\n").as_bytes())?;
    }
    let (mut dirty_base_ms, mut dirty_ms) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        baseline(&mut dirty_base_ms)?;
        tandem_run(true, &mut dirty_ms)?;
    }
    // The same dirty worktrees after a supervisor restart: nothing
    // changes between calls.
    tandem.stop_daemon();
    let (mut restart_base_ms, mut restart_ms) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        baseline(&mut restart_base_ms)?;
        tandem_run(false, &mut restart_ms)?;
    }

    println!(
        "tandem conflicts: {} sessions, {pairs} pairs ({expected} conflicting), {} files, {} runs, median (min–max)",
        args.sessions, args.files, args.runs
    );
    println!("{:<30} {:>22} {:>22} {:>8}  target", "case", "tandem ms", "merge-tree ms", "ratio");
    let spread = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        format!("{:.1} ({min:.1}–{max:.1})", median(v).unwrap_or(f64::NAN))
    };
    let line = |case: &str, t: &[f64], base: Option<&[f64]>, target: Option<f64>| {
        let m = |v: &[f64]| median(v).unwrap_or(f64::NAN);
        let ratio = base.map(|b| m(t) / m(b));
        let verdict = match (target, ratio) {
            (Some(max), Some(r)) if r <= max => format!("≤ {max:.1}× met"),
            (Some(max), _) => format!("≤ {max:.1}× MISSED"),
            (None, _) => "(printed)".to_owned(),
        };
        println!(
            "{case:<30} {:>22} {:>22} {:>8}  {verdict}",
            spread(t),
            base.map(spread).unwrap_or_default(),
            ratio.map(|r| format!("{r:.2}×")).unwrap_or_default()
        );
    };
    line("fresh, clean (--fresh)", &cold_ms, Some(&base_ms), Some(TARGET));
    line("new supervisor, clean (--fresh)", &new_ms, Some(&new_base_ms), None);
    line("cached, clean", &warm_ms, None, None);
    line("fresh, dirty (--fresh)", &dirty_ms, Some(&dirty_base_ms), None);
    line("dirty, after restart", &restart_ms, Some(&restart_base_ms), Some(DIRTY_TARGET));
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
