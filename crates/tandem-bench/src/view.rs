//! `tandem-bench view`: how long the agent view takes to redraw with many
//! sessions, against the 16 ms frame budget (60 frames a second). Each
//! frame builds the grouped rows, lays them out and renders the list, a
//! 200×60 preview screen and the history into ratatui's in-memory backend,
//! as the view does on every tick.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Result;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tandem_cli::view::model::{App, SessionRow};
use tandem_cli::view::render::{Scene, draw};
use tandem_core::session::facts::{DiffStat, GitFacts};
use tandem_core::ship::github::{Checks, PrState, PrStatus, Review};
use tandem_core::store::{Meta, Priority, TaskStatus};

use crate::stats::median;

/// Time the agent view's redraw.
#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// Sessions shown
    #[arg(long, default_value_t = 50)]
    sessions: usize,
    /// Frames drawn
    #[arg(long, default_value_t = 500)]
    frames: usize,
    /// Terminal size, columns×rows
    #[arg(long, default_value_t = 200)]
    cols: u16,
    #[arg(long, default_value_t = 60)]
    rows: u16,
}

/// The frame budget: 60 frames a second.
const BUDGET_MS: f64 = 1000.0 / 60.0;

pub fn run_cmd(args: &ViewArgs) -> Result<()> {
    let states = ["needs-input", "running", "running", "idle", "idle", "exited", "archived"];
    let rows: Vec<SessionRow> = (0..args.sessions)
        .map(|i| {
            let mut facts = GitFacts::default();
            facts.worktree.exists = true;
            facts.worktree.changed = u32::try_from(i % 4).unwrap_or(0);
            facts.worktree.untracked = 1;
            facts.worktree.uncommitted =
                DiffStat { files: 2, insertions: 10 * u32::try_from(i).unwrap_or(0), deletions: 3 };
            facts.refs.ahead = Some(u32::try_from(i % 5).unwrap_or(0));
            facts.refs.behind = Some(1);
            SessionRow {
                id: format!("id{i}"),
                name: format!("session-{i:03}"),
                agent: if i % 3 == 0 { "codex" } else { "claude" }.to_owned(),
                state: states[i % states.len()].to_owned(),
                since: 1_800_000_000 - i64::try_from(i * 37).unwrap_or(0),
                asking: Some(format!("Bash: cargo test -p crate-{i}")),
                branch: format!("session-{i:03}"),
                base: "main".to_owned(),
                facts,
                meta: Meta {
                    title: Some(format!("Task number {i} with a longer title")),
                    priority: Priority::ALL[i % Priority::ALL.len()],
                    status: TaskStatus::ALL[i % TaskStatus::ALL.len()],
                    pinned: i % 11 == 0,
                },
                pr_number: (i % 4 == 0).then(|| i64::try_from(i).unwrap_or(0)),
                pr: (i % 4 == 0).then(|| PrStatus {
                    number: u64::try_from(i).unwrap_or(0),
                    url: String::new(),
                    state: PrState::Open,
                    checks: Checks::Passing,
                    review: Review::None,
                    checked_at: 0,
                }),
                last_message: Some(format!("Finished step {i}; the tests pass and the diff is small.")),
                ..SessionRow::default()
            }
        })
        .collect();
    let mut app = App::new();
    app.set_rows(rows);
    let mut screen = vt100::Parser::new(args.rows, args.cols, 0);
    for i in 0..u32::from(args.rows) * 3 {
        let line = format!("\x1b[3{}mline {i}\x1b[0m compiling crate {i} of many, warnings: none\r\n", i % 6 + 1);
        screen.process(line.as_bytes());
    }
    let history: Vec<(String, String)> =
        (0..20).map(|i| ("tool-result".to_owned(), format!("output line {i} of the last command"))).collect();
    let mut terminal = Terminal::new(TestBackend::new(args.cols, args.rows))?;
    let mut samples = Vec::with_capacity(args.frames);
    for frame in 0..args.frames {
        let start = Instant::now();
        terminal.draw(|f| {
            let scene = Scene {
                title: "bench",
                preview: Some(screen.screen()),
                history: &history,
                now: 1_800_000_000,
                color: true,
            };
            draw(f, &app, &scene);
        })?;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        if frame % 2 == 0 {
            // Move the selection, as a user would.
            app.key(key_down());
        }
    }
    samples.sort_by(f64::total_cmp);
    let median = median(&samples).unwrap_or_default();
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    let mut out = String::new();
    let _ = writeln!(out, "{} frames of {} sessions at {}×{}", args.frames, args.sessions, args.cols, args.rows);
    let _ = writeln!(out, "{:<14} {:>10} {:>10}   {:<10} result", "", "tandem", "budget", "target");
    for (name, value) in [("redraw median", median), ("redraw p99", p99)] {
        let result = if value < BUDGET_MS { "ok" } else { "MISSED" };
        let _ = writeln!(out, "{name:<14} {:>7.2} ms {BUDGET_MS:>7.2} ms   < 16 ms    {result}", value);
    }
    print!("{out}");
    Ok(())
}

fn key_down() -> tandem_cli::view::model::Key {
    tandem_cli::view::model::Key::new(tandem_cli::view::model::KeyCode::Down)
}
