//! `tandem-bench`: builds a large deterministic repository and measures
//! tandem's `new`, `rm` and `list` against the plain git commands they wrap
//! (`run`); measures a session host against tmux and the state and history
//! paths (`agents`); times the agent view's redraw (`view`); times
//! `tandem conflicts` against `git merge-tree --stdin` (`conflicts`);
//! times `tandem status` beside `tandem list` (`status`); measures the web
//! dashboard and its terminal beside `tandem list` and `tandem attach`
//! (`web`); measures remote hosts over a real private sshd: `list` with
//! two remotes, `attach HOST:NAME` echo and `new --on` beside plain ssh,
//! tmux and git (`remote`, as root); times a checkpoint beside `git stash
//! create`, its p99 over many turns and its disk growth (`checkpoints`);
//! measures 200 sessions on one machine: list, status, state changes,
//! view frames, the supervisor's CPU and memory (`scale`).

mod agents;
mod bench;
mod checkpoints;
mod conflicts;
mod fixture;
mod process;
mod pty;
mod remote;
mod rng;
mod scale;
mod stats;
mod status;
mod view;
mod web;

use clap::{Parser, Subcommand};

/// Benchmark tandem against plain git on a large generated repository.
#[derive(Parser, Debug)]
#[command(name = "tandem-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Fixture(fixture::FixtureArgs),
    Run(bench::RunArgs),
    Agents(agents::AgentsArgs),
    View(view::ViewArgs),
    Conflicts(conflicts::ConflictsArgs),
    Status(status::StatusArgs),
    Web(web::WebArgs),
    Remote(remote::RemoteArgs),
    Checkpoints(checkpoints::CheckpointsArgs),
    Scale(scale::ScaleArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Fixture(args) => fixture::run_cmd(args),
        Command::Run(args) => bench::run_cmd(args),
        Command::Agents(args) => agents::run_cmd(args),
        Command::View(args) => view::run_cmd(args),
        Command::Conflicts(args) => conflicts::run_cmd(args),
        Command::Status(args) => status::run_cmd(args),
        Command::Web(args) => web::run_cmd(args),
        Command::Remote(args) => remote::run_cmd(args),
        Command::Checkpoints(args) => checkpoints::run_cmd(args),
        Command::Scale(args) => scale::run_cmd(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
