//! The command tree: one module per subcommand, each with a doc-commented
//! `Args` struct and a `run` fn.

/// `tandem hook`: what an agent's hook (Claude Code's) runs to report an event.
mod agent_hook;
mod answer;
mod archive;
pub(crate) mod attach;
mod checkpoints;
mod completions;
mod config;
mod conflicts;
mod daemon;
mod diff;
mod doctor;
mod env;
pub(crate) mod examples;
mod fetch;
mod fork;
mod gc;
mod history;
mod host;
mod interrupt;
pub mod list;
mod logs;
mod man;
mod mcp;
mod merge;
pub(crate) mod new;
pub(crate) mod open;
mod path;
mod pr;
mod proxy;
mod push;
pub(crate) mod remote;
mod rename;
/// `tandem hooks`: the repository's hook commands, shown and approved by the user.
pub mod repo_hooks;
mod respawn;
mod restore;
mod review;
mod rewind;
mod rm;
pub(crate) mod route;
mod run;
mod sandbox_limit;
mod sandbox_net;
mod search;
mod send;
mod serve;
mod set;
mod status;
mod stop;
mod sync;
mod task;

use clap::{Parser, Subcommand};

use crate::context::Context;
use crate::error::CliError;

/// Run AI coding agents side by side, each in its own git worktree.
#[derive(Parser, Debug)]
#[command(name = "tandem", version, about, after_help = TOP_AFTER_HELP)]
pub struct Cli {
    /// Without a command, on a terminal: the agent view (`tandem view`)
    #[command(subcommand)]
    command: Option<Command>,
    /// Print no notes or progress on stderr (errors still print)
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Run as if in the repository at PATH (or the one tandem knows by
    /// that folder name); NAME then finds its sessions
    #[arg(long, global = true, value_name = "PATH")]
    repo: Option<std::path::PathBuf>,
}

/// The commands a status line or a watch loop runs every few seconds,
/// exactly `tandem status` and `tandem list` with no other argument:
/// what clap would parse them to, without building the parser for every
/// subcommand first (~0.4 ms of a 3 ms `tandem status`, issue 23).
/// `None` for anything else, which clap parses.
fn without_clap(mut args: impl Iterator<Item = std::ffi::OsString>) -> Option<Cli> {
    let command = match args.next()?.to_str()? {
        "status" => Command::Status(status::StatusArgs::default()),
        "list" => Command::List(list::ListArgs::plain()),
        _ => return None,
    };
    args.next().is_none().then_some(Cli { command: Some(command), quiet: false, repo: None })
}

/// The end of `tandem --help`: examples, exit codes, where errors and
/// JSON are documented (issue 19).
const TOP_AFTER_HELP: &str = "Examples:
  tandem new fix-login -p 'fix the login redirect'   start an agent in a new session
  tandem                                             the agent view: every session at once
  tandem list                                        sessions and their states
  tandem attach fix-login                            its terminal (Ctrl-\\ detaches)
  tandem merge fix-login                             merge its branch into the base

Exit codes:
  0    success
  1    an error you can act on (bad input, not found, would lose work, unavailable)
  2    usage: an unknown command, flag or missing argument
  255  a bug in tandem; please report it
  `tandem run` exits with its command's code.

Errors print as `error:`, then `caused by:` and `hint:` lines (docs/errors.md).
`--json` output is described in docs/json.md; `tandem man` prints the manual.";

#[derive(Subcommand, Debug)]
enum Command {
    New(new::NewArgs),
    View(crate::view::ViewArgs),
    #[command(alias = "ls")]
    List(list::ListArgs),
    Status(status::StatusArgs),
    Attach(attach::AttachArgs),
    Logs(logs::LogsArgs),
    Stop(stop::StopArgs),
    Rm(rm::RmArgs),
    Rename(rename::RenameArgs),
    Set(set::SetArgs),
    Path(path::PathArgs),
    Env(env::EnvArgs),
    Send(send::SendArgs),
    Interrupt(interrupt::InterruptArgs),
    Approve(answer::ApproveArgs),
    Deny(answer::DenyArgs),
    Respawn(respawn::RespawnArgs),
    Fork(fork::ForkArgs),
    Diff(diff::DiffArgs),
    Push(push::PushArgs),
    Pr(pr::PrArgs),
    Review(review::ReviewArgs),
    Sync(sync::SyncArgs),
    Merge(merge::MergeArgs),
    Fetch(fetch::FetchArgs),
    Conflicts(conflicts::ConflictsArgs),
    Task(task::TaskArgs),
    History(history::HistoryArgs),
    Checkpoints(checkpoints::CheckpointsArgs),
    Rewind(rewind::RewindArgs),
    Search(search::SearchArgs),
    Archive(archive::ArchiveArgs),
    Restore(restore::RestoreArgs),
    Gc(gc::GcArgs),
    Doctor(doctor::DoctorArgs),
    Hooks(repo_hooks::HooksArgs),
    Config(config::ConfigArgs),
    Completions(completions::CompletionsArgs),
    Daemon(daemon::DaemonArgs),
    Man(man::ManArgs),
    Shell(run::ShellArgs),
    Open(open::OpenArgs),
    Run(run::RunArgs),
    Serve(serve::ServeArgs),
    Mcp(mcp::McpArgs),
    Remote(remote::RemoteArgs),
    #[command(hide = true)]
    Proxy(proxy::ProxyArgs),
    #[command(hide = true)]
    Host(host::HostArgs),
    #[command(hide = true)]
    Hook(agent_hook::HookArgs),
    #[command(hide = true)]
    SandboxNet(sandbox_net::SandboxNetArgs),
    #[command(hide = true)]
    SandboxLimit(sandbox_limit::SandboxLimitArgs),
}

/// The command line, parsed; on a mistyped subcommand, clap's error
/// with suggestions among the visible subcommands only (clap's own
/// suggest hidden ones too: `tandem lst` offered `host`).
pub fn parse() -> Cli {
    if let Some(cli) = without_clap(std::env::args_os().skip(1)) {
        return cli;
    }
    use clap::FromArgMatches;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let error = match examples::command().try_get_matches() {
        Ok(matches) => return Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()),
        Err(e) if e.kind() == ErrorKind::InvalidSubcommand => e,
        Err(e) => e.exit(),
    };
    let Some(ContextValue::String(typed)) = error.get(ContextKind::InvalidSubcommand).cloned() else { error.exit() };
    let mut cmd = examples::command();
    let mut suggestions: Vec<(f64, String)> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_visible_aliases()))
        .map(|name| (strsim::jaro(&typed, name), name.to_owned()))
        .filter(|(confidence, _)| *confidence > 0.7)
        .collect();
    // As clap orders them: the likeliest last.
    suggestions.sort_by(|a, b| a.0.total_cmp(&b.0));
    cmd.build();
    let mut fixed = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(&cmd);
    for (kind, value) in error.context() {
        if kind != ContextKind::SuggestedSubcommand {
            fixed.insert(kind, value.clone());
        }
    }
    if !suggestions.is_empty() {
        let names = suggestions.into_iter().map(|(_, name)| name).collect();
        fixed.insert(ContextKind::SuggestedSubcommand, ContextValue::Strings(names));
    }
    fixed.exit()
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    crate::context::set_quiet(cli.quiet);
    match &cli.command {
        Some(Command::SandboxNet(args)) => return sandbox_net::run(args),
        Some(Command::SandboxLimit(args)) => return sandbox_limit::run(args),
        _ => {}
    }
    let mut cx = Context::new()?;
    if let Some(repo) = &cli.repo {
        cx.cwd = cx.repo_dir(repo)?;
    }
    // Commands about the current repository send its folder as text: a
    // folder that is not UTF-8 is refused up front (issue 17), not
    // reported as a supervisor that "did not answer". The supervisor and
    // hosts only inherit their folder.
    let about_cwd = !matches!(
        cli.command,
        Some(Command::Daemon(_) | Command::Host(_) | Command::Hook(_) | Command::Completions(_) | Command::Man(_))
    );
    if about_cwd && cx.cwd.to_str().is_none() {
        return Err(tandem_core::repo::RepoError::NotUtf8 { path: cx.cwd.clone() }.into());
    }
    let Some(command) = cli.command else {
        return crate::view::run(&cx, &crate::view::ViewArgs::bare(&cx));
    };
    // A session on a remote host: its host carries the command out.
    match route::route(&cx)? {
        route::Route::Local => {}
        route::Route::Reparse(argv) => {
            let cli = Cli::try_parse_from(argv).map_err(|e| CliError::user(e.to_string()))?;
            if let Some(command) = cli.command {
                return dispatch(&cx, command);
            }
        }
        route::Route::Remote { host, args, name, command } => {
            return route::run_remote(&cx, &host, args, &name, &command);
        }
    }
    dispatch(&cx, command)
}

fn dispatch(cx: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::New(args) => new::run(cx, &args),
        Command::View(args) => crate::view::run(cx, &args),
        Command::List(args) => list::run(cx, &args),
        Command::Status(args) => status::run(cx, &args),
        Command::Attach(args) => attach::run(cx, &args),
        Command::Logs(args) => logs::run(cx, &args),
        Command::Stop(args) => stop::run(cx, &args),
        Command::Rm(args) => rm::run(cx, &args),
        Command::Rename(args) => rename::run(cx, &args),
        Command::Set(args) => set::run(cx, &args),
        Command::Path(args) => path::run(cx, &args),
        Command::Env(args) => env::run(cx, &args),
        Command::Send(args) => send::run(cx, &args),
        Command::Interrupt(args) => interrupt::run(cx, &args),
        Command::Approve(args) => answer::approve(cx, &args),
        Command::Deny(args) => answer::deny(cx, &args),
        Command::Respawn(args) => respawn::run(cx, &args),
        Command::Fork(args) => fork::run(cx, &args),
        Command::Diff(args) => diff::run(cx, &args),
        Command::Push(args) => push::run(cx, &args),
        Command::Pr(args) => pr::run(cx, &args),
        Command::Review(args) => review::run(cx, &args),
        Command::Sync(args) => sync::run(cx, &args),
        Command::Merge(args) => merge::run(cx, &args),
        Command::Fetch(args) => fetch::run(cx, &args),
        Command::Conflicts(args) => conflicts::run(cx, &args),
        Command::Task(args) => task::run(cx, &args),
        Command::History(args) => history::run(cx, &args),
        Command::Checkpoints(args) => checkpoints::run(cx, &args),
        Command::Rewind(args) => rewind::run(cx, &args),
        Command::Search(args) => search::run(cx, &args),
        Command::Archive(args) => archive::run(cx, &args),
        Command::Restore(args) => restore::run(cx, &args),
        Command::Gc(args) => gc::run(cx, &args),
        Command::Doctor(args) => doctor::run(cx, &args),
        Command::Hooks(args) => repo_hooks::run(cx, &args),
        Command::Config(args) => config::run(cx, &args),
        Command::Completions(args) => completions::run(cx, &args),
        Command::Daemon(args) => daemon::run(cx, &args),
        Command::Man(args) => man::run(cx, &args),
        Command::Shell(args) => run::shell(cx, &args),
        Command::Open(args) => open::run(cx, &args),
        Command::Run(args) => run::run(cx, &args),
        Command::Serve(args) => serve::run(cx, &args),
        Command::Mcp(args) => mcp::run(cx, &args),
        Command::Remote(args) => remote::run(cx, &args),
        Command::Proxy(args) => proxy::run(cx, &args),
        Command::Host(args) => host::run(cx, &args),
        Command::Hook(args) => agent_hook::run(cx, &args),
        Command::SandboxNet(args) => sandbox_net::run(&args),
        Command::SandboxLimit(args) => sandbox_limit::run(&args),
    }
}

/// The agent view's diff and merge keys: `tandem ARGS` (`diff NAME`,
/// `merge NAME`) carried out in this process, in `cx`'s repository.
pub(crate) fn run_in_view(cx: &Context, args: &[&str]) -> Result<(), CliError> {
    let cli = Cli::try_parse_from(std::iter::once("tandem").chain(args.iter().copied()))
        .map_err(|e| CliError::user(e.to_string()))?;
    match cli.command {
        Some(Command::Diff(args)) => diff::run(cx, &args),
        Some(Command::Merge(args)) => merge::run(cx, &args),
        _ => Err(CliError::Internal(format!("the view runs only diff and merge, not {args:?}"))),
    }
}

#[cfg(test)]
mod tests {
    /// No two arguments clash (a global `--repo` and a command's own).
    #[test]
    fn the_command_tree_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// `tandem status` and `tandem list` alone parse as clap parses them;
    /// with anything more (or anything else) clap parses.
    #[test]
    fn status_and_list_alone_parse_as_clap_parses_them() {
        use clap::Parser;
        for command in ["status", "list"] {
            let fast = super::without_clap([command.into()].into_iter()).expect("the fast path");
            let clap = super::Cli::parse_from(["tandem", command]);
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"));
        }
        for args in [&["status", "--json"][..], &["list", "-q"], &["view"], &["statu"], &[]] {
            assert!(super::without_clap(args.iter().map(std::ffi::OsString::from)).is_none(), "{args:?}");
        }
    }
}
