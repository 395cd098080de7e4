//! Shell completion through clap_complete's dynamic engine: the shell
//! calls `tandem` back (`COMPLETE=<shell> tandem -- <words>`) and this
//! module answers with the candidates, so session names, archived
//! sessions, tasks and agents are always current.
//!
//! Which argument completes what is read off the clap definitions, not
//! listed by hand, so a new command that takes a session completes it:
//! - a positional `NAME` or `OLD` (the session to act on; not `new`'s
//!   name, which names a new session): the repository's live sessions,
//!   or its archived ones for `restore`;
//! - a `TASK`: the repository's tasks;
//! - `--agent` / `--agents` (a comma list): the built-in agents of
//!   [`tandem_core::agent::AGENTS`].
//!
//! Candidates come from the SQLite store, read only: completing never
//! starts a supervisor, never creates the state folder, and a failure
//! means no candidates, never an error on the user's terminal. Titles
//! shown beside names (zsh, fish) pass [`tandem_core::text::visible`]:
//! an agent may have written them.

use std::ffi::OsStr;
use std::path::Path;

use clap::{Arg, Command};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use tandem_core::model::SessionState;
use tandem_core::paths::Paths;
use tandem_core::store::Store;

/// The environment variable the shell scripts set when they ask for
/// candidates (clap_complete's default).
pub const VAR: &str = "COMPLETE";

/// What an argument completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completes {
    /// Sessions that are neither archived nor removed.
    Live,
    /// Archived sessions (`restore`).
    Archived,
    /// Tasks of the repository.
    Tasks,
    /// One agent name.
    Agent,
    /// A comma-separated list of agent names; the last one completes.
    Agents,
}

/// The clap command tree with a completer on every argument that takes
/// a session, a task or an agent.
#[must_use]
pub fn command() -> Command {
    with_completers(crate::commands::examples::command())
}

/// When the shell asks for candidates (`COMPLETE` set), answer and exit;
/// otherwise return and let the command run.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(command).var(VAR).complete();
}

/// The registration script for `shell` (`bash`, `zsh`, `fish`, `elvish`,
/// `powershell`), calling back `completer` (this binary as invoked).
///
/// # Errors
/// An unknown shell name; a failed write to `out`.
pub fn write_registration(shell: &str, completer: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let shells = clap_complete::env::Shells::builtins();
    let Some(env) = shells.completer(shell) else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no completion for {shell}")));
    };
    env.write_registration(VAR, "tandem", "tandem", completer, out)
}

fn with_completers(mut cmd: Command) -> Command {
    let name = cmd.get_name().to_owned();
    // `mut_arg` moves the argument to the end of the list, and clap
    // numbers positionals by their order there: each positional gets
    // its place as an explicit index first, so `fork NAME [NEW]` keeps
    // NAME first.
    let positionals: Vec<String> =
        cmd.get_arguments().filter(|arg| arg.is_positional()).map(|arg| arg.get_id().to_string()).collect();
    for (at, id) in positionals.into_iter().enumerate() {
        cmd = cmd.mut_arg(id, |arg| if arg.get_index().is_some() { arg } else { arg.index(at + 1) });
    }
    let found: Vec<(String, Completes)> =
        cmd.get_arguments().filter_map(|arg| completes(&name, arg).map(|c| (arg.get_id().to_string(), c))).collect();
    for (id, what) in found {
        cmd = cmd.mut_arg(id, |arg| arg.add(ArgValueCompleter::new(move |current: &OsStr| candidates(what, current))));
    }
    let subcommands: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    for sub in subcommands {
        cmd = cmd.mut_subcommand(sub, with_completers);
    }
    cmd
}

fn completes(command: &str, arg: &Arg) -> Option<Completes> {
    match arg.get_long() {
        Some("agent") => return Some(Completes::Agent),
        Some("agents") => return Some(Completes::Agents),
        _ => {}
    }
    if !arg.is_positional() {
        return None;
    }
    let value = arg.get_value_names().and_then(|names| names.first()).map(|n| n.as_str().to_owned());
    match value.as_deref() {
        Some("NAME" | "OLD") if command == "restore" => Some(Completes::Archived),
        Some("NAME" | "OLD") if command != "new" => Some(Completes::Live),
        Some("TASK") => Some(Completes::Tasks),
        _ => None,
    }
}

fn candidates(what: Completes, current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_str().unwrap_or_default();
    match what {
        Completes::Agent => agents("", current),
        Completes::Agents => {
            let (done, last) = current.rsplit_once(',').map_or(("", current), |(d, l)| (d, l));
            let prefix = if done.is_empty() { String::new() } else { format!("{done},") };
            agents(&prefix, last)
        }
        Completes::Live | Completes::Archived | Completes::Tasks => {
            let Ok(cwd) = std::env::current_dir() else { return Vec::new() };
            from_store(what, &cwd, current).unwrap_or_default()
        }
    }
}

fn agents(prefix: &str, current: &str) -> Vec<CompletionCandidate> {
    use tandem_core::agent::{AGENTS, Names};
    AGENTS
        .iter()
        .filter_map(|profile| match profile.names {
            Names::Exact(name) | Names::Program(name) => Some(name),
            Names::Any => None,
        })
        .filter(|name| name.starts_with(current))
        .map(|name| CompletionCandidate::new(format!("{prefix}{name}")))
        .collect()
}

fn from_store(what: Completes, cwd: &Path, current: &str) -> Option<Vec<CompletionCandidate>> {
    let paths = Paths::from_env().ok()?;
    let database = paths.database();
    if !database.exists() {
        return None;
    }
    let repo = tandem_core::repo::Repository::discover(cwd).ok()?;
    let store = Store::open(&database).ok()?;
    let repo_id = store.find_repo(&repo.common_dir).ok()??;
    let shown = |name: &str, help: &str| {
        let help = tandem_core::text::visible(help).replace(['\n', '\r', '\t'], " ");
        let candidate = CompletionCandidate::new(name.to_owned());
        if help.is_empty() { candidate } else { candidate.help(Some(help.into())) }
    };
    if what == Completes::Tasks {
        let tasks = store.tasks(repo_id).ok()?;
        return Some(
            tasks.iter().filter(|t| t.slug.starts_with(current)).map(|t| shown(&t.slug, &t.objective)).collect(),
        );
    }
    let sessions = store.sessions(repo_id).ok()?;
    Some(
        sessions
            .iter()
            .filter(|s| match what {
                Completes::Archived => s.state == SessionState::Archived,
                _ => !matches!(s.state, SessionState::Archived | SessionState::Removed),
            })
            .filter(|s| s.slug.starts_with(current))
            .map(|s| shown(&s.slug, s.meta.title.as_deref().unwrap_or_default()))
            .collect(),
    )
}
