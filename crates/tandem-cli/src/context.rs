//! What every command needs: where state lives, the repository, the
//! store, the supervisor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use tandem_core::client::Tandem;
use tandem_core::config::Config;
use tandem_core::connection::Client;
use tandem_core::paths::Paths;
use tandem_core::protocol::{EnvChoice, EnvFile};
use tandem_core::repo::Repository;
use tandem_core::session;
use tandem_core::store::{Session, Store};

use crate::error::CliError;

/// `--quiet`: notes and progress are not printed.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets `--quiet` for this process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
#[must_use]
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `note: …` on stderr, unless `--quiet` (issue 19): what tandem did or
/// noticed beside the command's result.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::context::quiet() {
            eprintln!("note: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use note;

pub struct Context {
    pub paths: Paths,
    pub cwd: PathBuf,
}

impl Context {
    pub fn new() -> Result<Context, CliError> {
        let cwd =
            std::env::current_dir().map_err(|e| CliError::user(format!("cannot read the current directory: {e}")))?;
        Ok(Context { paths: Paths::from_env()?, cwd })
    }

    /// The repository of the current directory and its config.
    pub fn repo(&self) -> Result<(Repository, Config), CliError> {
        Ok(session::open_repo(&self.paths, &self.cwd)?)
    }

    /// The folder `--repo PATH` names: PATH (from the current folder),
    /// else the main worktree of the repository tandem knows by that
    /// folder name.
    pub fn repo_dir(&self, repo: &std::path::Path) -> Result<PathBuf, CliError> {
        let path = self.cwd.join(repo);
        if path.is_dir() {
            return Ok(path);
        }
        if self.paths.database().exists() {
            let name = repo.to_string_lossy();
            let known = self.store()?.repos()?;
            let mut matching =
                known.iter().filter(|(_, _, root)| session::lookup::repo_name(root) == name).map(|(_, _, r)| r);
            if let (Some(root), None) = (matching.next(), matching.next()) {
                return Ok(root.clone());
            }
        }
        Err(CliError::user(format!(
            "--repo: {} is not a folder, nor a repository tandem knows; pass the repository's folder",
            tandem_core::text::visible(&repo.display().to_string())
        )))
    }

    pub fn store(&self) -> Result<Store, CliError> {
        self.paths.ensure_state_dir()?;
        Ok(Store::open(&self.paths.database())?)
    }

    /// The live session called `name` in the current repository.
    /// What a sandboxed agent committed or staged is read back first
    /// (see [`Tandem::session`]).
    pub fn session(&self, name: &str) -> Result<(Repository, Config, Session), CliError> {
        Ok(self.tandem()?.session(&self.cwd, name)?)
    }

    /// The session `name` finds ([`Tandem::session_at`]); no name: the
    /// session whose worktree the command runs in.
    pub fn named(&self, name: Option<&str>) -> Result<(Repository, Config, Session), CliError> {
        Ok(self.tandem()?.session_at(&self.cwd, name)?)
    }

    /// The supervisor, started if none runs.
    pub fn supervisor(&self) -> Result<Client, CliError> {
        Ok(self.tandem()?.supervisor()?)
    }

    /// The typed client every action goes through.
    pub fn tandem(&self) -> Result<Tandem, CliError> {
        let exe =
            std::env::current_exe().map_err(|e| CliError::Internal(format!("cannot find the tandem binary: {e}")))?;
        Ok(Tandem::new(self.paths.clone(), exe))
    }
}

/// The user's own config (no repository's), defaults where the file is
/// missing or does not parse.
pub fn user_config(paths: &tandem_core::paths::Paths) -> tandem_core::config::Config {
    let file = paths.config_dir.join("config.toml");
    tandem_core::config::Config::load_lenient(&file, None).0
}

/// This command's environment, to hand to the supervisor for an agent or
/// a hook: the variables that are text. `respawn` and `fork` send it too,
/// but the supervisor gives their agent the session's own environment
/// (issue 19) unless `--env-from-shell`; it fills in only a secret of the
/// session's that its memory lost. Each one left out (a name or
/// value that is not UTF-8) is named in a note on stderr, so an agent
/// missing it is explained (issue 17: `std::env::vars` panicked on one).
pub fn agent_env() -> Vec<(String, String)> {
    let (env, left_out) = tandem_core::session::env::process_env();
    for key in left_out {
        note!("`{}` is left out of the agent's environment: its value is not UTF-8", tandem_core::text::visible(&key));
    }
    env
}

/// What `new`, `fork` and `review` print with `--json` (docs/json.md):
/// one object naming the session they made.
pub fn created_json(session: &Session, notes: &[String]) -> serde_json::Value {
    tandem_core::client::created_json(session, notes)
}

/// `--env KEY=VALUE` pairs, checked.
pub fn env_pairs(texts: &[String]) -> Result<Vec<(String, String)>, CliError> {
    texts
        .iter()
        .map(|v| tandem_core::session::env::parse_pair(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::user(e.to_string()))
}

/// `--env-file` files, each read here, once (a `<(…)` cannot be read
/// again by another process): their values go to the supervisor over its
/// private socket and stay in its memory, never on disk.
pub fn read_env_files(files: &[PathBuf]) -> Result<Vec<EnvFile>, CliError> {
    let mut read = Vec::new();
    for file in files {
        let path = std::path::absolute(file)?;
        let vars = tandem_core::session::env::read_env_file(&path).map_err(|e| CliError::user(e.to_string()))?;
        read.push(EnvFile { path, vars });
    }
    Ok(read)
}

/// The `--env`, `--env-file` and `--env-from-shell` of `respawn` and
/// `fork`: how they choose the agent's environment (by default the
/// session's own, not this command's).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EnvChoiceArgs {
    /// A variable for the agent (repeatable); kept with the session for
    /// its next starts
    #[arg(long = "env", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// A dotenv file whose variables the agent gets as secrets, instead
    /// of the session's env files (repeatable; read once, never stored)
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Give the agent this shell's environment instead of the session's
    /// (recorded as the session's from then on)
    #[arg(long)]
    env_from_shell: bool,
}

impl EnvChoiceArgs {
    /// The choice as sent to the supervisor; bad input is refused here,
    /// before anything is asked.
    pub fn choice(&self) -> Result<EnvChoice, CliError> {
        Ok(EnvChoice {
            vars: env_pairs(&self.vars)?,
            env_files: read_env_files(&self.env_files)?,
            from_shell: self.env_from_shell,
        })
    }
}
