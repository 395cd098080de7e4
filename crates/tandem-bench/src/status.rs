//! `tandem-bench status`: how long `tandem status` (one line for tmux's
//! status line and shell prompts, read from the store) takes warm, beside
//! `tandem list` (which asks the supervisor and reads git facts), run by
//! run alternating, on a small repository with a few live sessions. The
//! target: a median ≤ 10 ms for `status`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, ensure};

use crate::fixture::{self, Layout, Shape};
use crate::process::{StopAll, run, run_timed};
use crate::stats::{median, ms};

/// Time `tandem status` against `tandem list`
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The tandem binary to measure
    #[arg(long)]
    tandem: PathBuf,
    /// Live sessions (shell agents)
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    /// Timed runs of each command
    #[arg(long, default_value_t = 40)]
    runs: usize,
}

/// The target for `tandem status`, warm.
const TARGET_MS: f64 = 10.0;

pub fn run_cmd(args: &StatusArgs) -> Result<()> {
    let bin = std::path::absolute(&args.tandem)?;
    ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let temp = tempfile::Builder::new().prefix("tandem-bench-status-").tempdir()?;
    let layout = Layout::new(temp.path())?;
    let tandem = layout.tandem(bin);
    let _stop = StopAll(&tandem);
    eprintln!("making a repository with {} sessions ...", args.sessions);
    fixture::build(&layout, Shape { files: 200, dirs: 10, sessions: 0 }, None)?;
    run(&mut tandem.cmd(["daemon", "start"]))?;
    for i in 0..args.sessions {
        tandem.new_session_at(&format!("s{i:02}"), "head")?;
    }
    // Warm: the store's pages, the supervisor's git facts.
    for _ in 0..3 {
        run(&mut tandem.cmd(["status"]))?;
        run(&mut tandem.cmd(["list"]))?;
    }
    let line = run(&mut tandem.cmd(["status"]))?;
    let (mut status, mut list) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        status.push(ms(run_timed(&mut tandem.cmd(["status"]), None)?.1));
        list.push(ms(run_timed(&mut tandem.cmd(["list"]), None)?.1));
    }
    let mut report = String::new();
    writeln!(report, "tandem status with {} sessions: {}", args.sessions, line.trim_end())?;
    writeln!(report, "{:<14} {:>10} {:>18}", "command", "median ms", "min–max ms")?;
    for (name, samples) in [("tandem status", &status), ("tandem list", &list)] {
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(0.0, f64::max);
        let mid = median(samples).unwrap_or(f64::NAN);
        writeln!(report, "{name:<14} {mid:>10.2} {:>18}", format!("{min:.2}–{max:.2}"))?;
    }
    let mid = median(&status).unwrap_or(f64::NAN);
    let verdict = if mid <= TARGET_MS { "met" } else { "MISSED" };
    writeln!(
        report,
        "target: tandem status ≤ {TARGET_MS} ms median: {verdict} ({} runs each, alternating)",
        args.runs
    )?;
    print!("{report}");
    Ok(())
}
