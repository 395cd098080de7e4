//! `tandem-bench checkpoints` (issue 22): what a checkpoint costs, side
//! by side with `git stash create` of the same state, run by run
//! alternating, in a session's worktree of a large repository (28,000
//! files by default) with 3 changed files; then the p50/p99/max over 50
//! turns of small edits, and the disk growth of 200 such turns after
//! `git gc`.
//!
//! A checkpoint is measured as the supervisor makes it: the whole of
//! `tandem_core::checkpoints::take` in this process (every git command it
//! runs, the diffstat, the store row, the ref, the history event), forced
//! so that each run writes one. `git stash create` is the baseline: one
//! git process that writes the tracked changes' tree and a commit, no
//! untracked files, no ref.
//!
//! Target: a checkpoint's median ≤ 1.0× `git stash create`'s.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use tandem_core::checkpoints::{self, Take};
use tandem_core::model::Cause;
use tandem_core::paths::Paths;
use tandem_core::store::Store;

use crate::fixture::{self, Layout, Shape};
use crate::process::{StopAll, run, run_timed};
use crate::rng::Rng;
use crate::stats::{line, median, ms};

/// Time a checkpoint against `git stash create`, its p99 over many turns,
/// and its disk growth
#[derive(clap::Args, Debug)]
pub struct CheckpointsArgs {
    /// The tandem binary (runs the supervisor and `tandem new`)
    #[arg(long)]
    tandem: PathBuf,
    /// Tracked files in the repository
    #[arg(long, default_value_t = 28_000)]
    files: usize,
    /// Folders they are spread over
    #[arg(long, default_value_t = 700)]
    dirs: usize,
    /// Timed runs of each side
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Turns for the p99
    #[arg(long, default_value_t = 50)]
    turns: usize,
    /// Turns for the disk growth
    #[arg(long, default_value_t = 200)]
    disk_turns: usize,
    /// Also time both sides with the page cache dropped before each run
    /// (`/proc/sys/vm/drop_caches`; needs root)
    #[arg(long)]
    cold: bool,
}

/// The target: checkpoint median / `git stash create` median.
const TARGET_RATIO: f64 = 1.0;

pub fn run_cmd(args: &CheckpointsArgs) -> Result<()> {
    let bin = std::path::absolute(&args.tandem)?;
    ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    ensure!(args.runs >= 1 && args.turns >= 1, "--runs and --turns must be at least 1");
    let temp = tempfile::Builder::new().prefix("tandem-bench-checkpoints-").tempdir()?;
    let layout = Layout::new(temp.path())?;
    let tandem = layout.tandem(bin);
    let _stop = StopAll(&tandem);
    eprintln!("making a repository of {} files ...", args.files);
    let built = fixture::build(&layout, Shape { files: args.files, dirs: args.dirs, sessions: 0 }, None)?;
    let plan = fixture::plan(args.files, args.dirs, fixture::SEED)?;
    run(&mut tandem.cmd(["daemon", "start"]))?;
    // The user's config: keep every checkpoint the bench makes.
    std::fs::create_dir_all(layout.home().join("config"))?;
    std::fs::write(layout.home().join("config/config.toml"), "[checkpoints]\nkeep = 100000\n")?;
    let (wt, _) = tandem.new_session_at("cp", "head")?;
    // No agent: the supervisor's checkpointer takes no turn of its own
    // while this measures.
    run(&mut tandem.cmd(["stop", "cp"]))?;

    let paths = Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| layout.home()))?;
    let store = Store::open(&paths.database())?;
    let session = store
        .sessions_in(&[tandem_core::store::SessionState::Stopped])?
        .into_iter()
        .find(|s| s.slug == "cp")
        .context("the session `cp` is not in the store")?;
    let (repo, _) = tandem_core::session::open_repo(&paths, &wt)?;
    let take = |cause: Cause, force: bool| {
        checkpoints::take(&paths, &repo, &store, &session, Take { cause, rewound_to: None, force, keep: 100_000 })
    };

    let mut rng = Rng::new(22);
    let edit = |n: usize, rng: &mut Rng| -> Result<()> {
        for _ in 0..n {
            let file = &plan.files[rng.below(plan.files.len())];
            fixture::append(&wt.join(&file.path), format!("edit {}\n", rng.below(1_000_000)).as_bytes())?;
        }
        Ok(())
    };
    edit(3, &mut rng)?;
    // Warm: the page cache, git's own files, the store.
    for _ in 0..3 {
        stash_create(&wt)?;
        take(Cause::Turn, true)?;
    }
    // Side by side, alternating which goes first; cold: the page cache
    // dropped before each run of each side.
    let side_by_side = |cold: bool| -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut stash, mut checkpoint) = (Vec::new(), Vec::new());
        for i in 0..args.runs {
            let mut sides = [true, false];
            if i % 2 == 1 {
                sides.reverse();
            }
            for is_stash in sides {
                if cold {
                    drop_caches()?;
                }
                let started = Instant::now();
                if is_stash {
                    stash_create(&wt)?;
                } else {
                    take(Cause::Turn, true)?.context("a forced checkpoint is always made")?;
                }
                (if is_stash { &mut stash } else { &mut checkpoint }).push(ms(started.elapsed()));
            }
        }
        Ok((stash, checkpoint))
    };
    let (stash, checkpoint) = side_by_side(false)?;
    let (cold_stash, cold_checkpoint) = if args.cold { side_by_side(true)? } else { (Vec::new(), Vec::new()) };

    // Turns: 3 files edited, then the checkpoint the turn's end makes.
    let mut turn = Vec::new();
    for _ in 0..args.turns {
        edit(3, &mut rng)?;
        let started = Instant::now();
        take(Cause::Turn, false)?.context("a turn that edited files makes a checkpoint")?;
        turn.push(ms(started.elapsed()));
    }
    // A turn that changed nothing (the supervisor skips it before any git
    // when its facts cache saw no file event; this is the cost without).
    let mut unchanged = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        ensure!(take(Cause::Turn, false)?.is_none(), "nothing changed, yet a checkpoint was made");
        unchanged.push(ms(started.elapsed()));
    }

    // Disk: `git gc` first, then the turns, then `git gc` again.
    gc(&layout.repo())?;
    let before = objects_bytes(&layout.repo())?;
    let made_before = store.checkpoints(&session.id)?.len();
    for _ in 0..args.disk_turns {
        edit(3, &mut rng)?;
        take(Cause::Turn, false)?;
    }
    gc(&layout.repo())?;
    let after = objects_bytes(&layout.repo())?;
    let made = store.checkpoints(&session.id)?.len() - made_before;
    let (only_checkpoints, refs) = checkpoints::disk_use(&repo)?;

    let mut report = String::new();
    writeln!(report, "{}", built.summary(&layout))?;
    writeln!(
        report,
        "checkpoint of a {}-file worktree with 3 changed files, {} runs each, alternating",
        args.files, args.runs
    )?;
    writeln!(report, "{:<34} {:>10} {:>20}", "", "median", "min–max")?;
    line(&mut report, 34, "git stash create", &stash, "ms")?;
    line(&mut report, 34, "tandem checkpoint (forced)", &checkpoint, "ms")?;
    let ratio = median(&checkpoint).unwrap_or(f64::NAN) / median(&stash).unwrap_or(f64::NAN);
    let verdict = if ratio <= TARGET_RATIO { "met" } else { "MISSED" };
    writeln!(report, "ratio {ratio:.2}× (target ≤ {TARGET_RATIO:.1}×: {verdict})")?;
    if args.cold {
        line(&mut report, 34, "git stash create, cold cache", &cold_stash, "ms")?;
        line(&mut report, 34, "tandem checkpoint, cold cache", &cold_checkpoint, "ms")?;
        let ratio = median(&cold_checkpoint).unwrap_or(f64::NAN) / median(&cold_stash).unwrap_or(f64::NAN);
        writeln!(report, "cold ratio {ratio:.2}×")?;
    }
    line(&mut report, 34, &format!("checkpoint per turn ({} turns)", args.turns), &turn, "ms")?;
    writeln!(
        report,
        "  turn p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&turn, 50.0),
        percentile(&turn, 99.0),
        percentile(&turn, 100.0)
    )?;
    line(&mut report, 34, "turn that changed nothing", &unchanged, "ms")?;
    writeln!(
        report,
        "disk: {} turns of 3 small edits made {made} checkpoints; objects after `git gc` {:.1} MiB → {:.1} MiB (+{:.1} KiB, {:.2} KiB per checkpoint); {refs} checkpoint refs keep {:.1} KiB no branch keeps",
        args.disk_turns,
        mib(before),
        mib(after),
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0 / made.max(1) as f64,
        only_checkpoints as f64 / 1024.0
    )?;
    print!("{report}");
    Ok(())
}

/// `git stash create` in `wt` (its output, a commit id, is dropped).
fn stash_create(wt: &Path) -> Result<()> {
    run_timed(std::process::Command::new("git").current_dir(wt).args(["stash", "create"]), None)?;
    Ok(())
}

/// Drops the page cache (and dentries, inodes) after writing dirty pages.
fn drop_caches() -> Result<()> {
    run(&mut std::process::Command::new("sync"))?;
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").context("dropping the page cache needs root (--cold)")
}

fn gc(repo: &Path) -> Result<()> {
    run(std::process::Command::new("git").current_dir(repo).args(["gc", "-q"]))?;
    Ok(())
}

/// Bytes of the repository's objects (`git count-objects -v`: loose
/// `size` plus `size-pack`, in KiB).
fn objects_bytes(repo: &Path) -> Result<u64> {
    let out = run(std::process::Command::new("git").current_dir(repo).args(["count-objects", "-v"]))?;
    let kib = |key: &str| -> u64 {
        out.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
    };
    Ok((kib("size:") + kib("size-pack:")) * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The nearest-rank `p`th percentile of `samples`.
fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=50).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 25.0);
        assert_eq!(percentile(&samples, 99.0), 50.0);
        assert_eq!(percentile(&samples, 100.0), 50.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
