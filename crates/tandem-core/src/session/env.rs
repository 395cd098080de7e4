//! What a session's agent sees in its environment, layered, later layers
//! winning key by key:
//!
//! 1. the environment of the `tandem new` call, recorded with the session
//!    (secrets by name only, their values kept in the supervisor's memory)
//!    and given again at `respawn`, `restore` and `fork` (issue 19; see
//!    [`crate::secrets::RecordedEnv`]);
//! 2. `[env]` from the config layers (user, then the repository's
//!    `.tandem.toml`), then `[env.secret]`;
//! 3. `tandem new --env-file FILE` (dotenv lines; every value a secret,
//!    read once by the CLI, kept in the supervisor's memory, never
//!    stored; [`crate::protocol::EnvFile`]);
//! 4. `tandem new --env KEY=VALUE`;
//! 5. tandem's own: `TANDEM_SESSION`, `TANDEM_BRANCH`, `TANDEM_BASE`,
//!    `TANDEM_WORKTREE`, `TANDEM_REPO`, `TANDEM_PORT` (the first of the
//!    session's own block of ports) and `TANDEM_SECRET_KEYS` (the names,
//!    never the values, of the secret variables, so whatever reads the
//!    environment later can mask them).

use std::path::Path;

use crate::config::Config;
use crate::store::Session;

// Secret values (which are secret, `--env-file` files whose values all
// are, masking them) live in [`crate::secrets`], which the store and the
// host use too; the names stay here.
pub use crate::protocol::EnvFile;
pub use crate::secrets::{
    EnvError, MASK, MIN_NAMED_SECRET_LEN, MIN_SECRET_LEN, RecordedEnv, is_caller_secret, is_secret_name, parse_pair,
    process_env, process_secrets, read_env_file, redact, secret_values, shown, valid_key,
};

/// The variable names tandem sets itself; `--env` and `[env]` cannot
/// replace them.
pub const OWN: [&str; 8] = [
    "TANDEM_SESSION",
    "TANDEM_SESSION_ID",
    "TANDEM_BRANCH",
    "TANDEM_BASE",
    "TANDEM_WORKTREE",
    "TANDEM_REPO",
    "TANDEM_PORT",
    "TANDEM_SECRET_KEYS",
];

/// A session's agent's environment, and which of its names are secrets.
#[derive(Debug, Clone, Default)]
pub struct AgentEnv {
    pub vars: Vec<(String, String)>,
    pub secrets: Vec<String>,
}

/// Sets `key` to `value`, replacing an earlier value.
fn set(vars: &mut Vec<(String, String)>, key: &str, value: String) {
    vars.retain(|(k, _)| k != key);
    vars.push((key.to_owned(), value));
}

/// The layered environment (see the module doc) for `session` of the
/// repository at `repo_root`, given the caller's environment (the
/// session's own, at a respawn), the config, the values of its env files
/// (read once, [`EnvFile`]) and the session's port.
#[must_use]
pub fn layered(
    caller: &[(String, String)],
    config: &Config,
    session: &Session,
    files: &[EnvFile],
    repo_root: &Path,
    port: Option<u16>,
) -> AgentEnv {
    let mut vars: Vec<(String, String)> = caller.iter().filter(|(k, _)| !OWN.contains(&k.as_str())).cloned().collect();
    let mut secrets: Vec<String> = Vec::new();
    let own = |k: &str| OWN.contains(&k);
    for (k, v) in config.env.vars.iter().filter(|(k, _)| !own(k)) {
        set(&mut vars, k, v.clone());
    }
    for (k, v) in config.env.secret.iter().filter(|(k, _)| !own(k)) {
        set(&mut vars, k, v.clone());
        secrets.push(k.clone());
    }
    for file in files {
        for (k, v) in file.vars.iter().filter(|(k, _)| !own(k)) {
            set(&mut vars, k, v.clone());
            secrets.push(k.clone());
        }
    }
    for (k, v) in session.env.iter().filter(|(k, _)| !own(k)) {
        set(&mut vars, k, v.clone());
        // Given on the command line in the clear: no longer a secret.
        secrets.retain(|s| s != k);
    }
    secrets.sort();
    secrets.dedup();
    set(&mut vars, "TANDEM_SESSION", session.slug.clone());
    // What `tandem hook` (called by the agent's hooks) reports for.
    set(&mut vars, "TANDEM_SESSION_ID", session.id.clone());
    set(&mut vars, "TANDEM_BRANCH", session.branch.clone());
    set(&mut vars, "TANDEM_BASE", session.base_ref.clone());
    set(&mut vars, "TANDEM_WORKTREE", session.path.to_string_lossy().into_owned());
    set(&mut vars, "TANDEM_REPO", repo_root.to_string_lossy().into_owned());
    if let Some(port) = port {
        set(&mut vars, "TANDEM_PORT", port.to_string());
    }
    set(&mut vars, "TANDEM_SECRET_KEYS", secrets.join(","));
    AgentEnv { vars, secrets }
}

/// The env files `paths` as [`EnvFile`]s: the values in `kept` (read
/// once by the command that was given the file) where it has them, else
/// read again; `names` gives the variables each file had, for the error,
/// and `again` the command to run with `--env-file` to give one again.
///
/// # Errors
/// [`EnvError::Missing`] for a file neither kept nor readable (a `<(…)`
/// after a supervisor restart); [`EnvError::BadLine`] for one that is
/// readable but bad now.
pub fn env_files(
    paths: &[std::path::PathBuf],
    kept: &[EnvFile],
    names: &[(std::path::PathBuf, Vec<String>)],
    again: &str,
) -> Result<Vec<EnvFile>, EnvError> {
    let mut files = Vec::new();
    for path in paths {
        if let Some(file) = kept.iter().find(|f| &f.path == path) {
            files.push(file.clone());
            continue;
        }
        match read_env_file(path) {
            Ok(vars) => files.push(EnvFile { path: path.clone(), vars }),
            Err(EnvError::Read { path, error }) => {
                let keys = names.iter().find(|(p, _)| *p == path).map(|(_, k)| k.clone()).unwrap_or_default();
                return Err(EnvError::Missing { path, keys, again: again.to_owned(), error });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(files)
}
