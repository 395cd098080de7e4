//! Hook commands: setup and teardown commands run in a session's
//! worktree, and the replacement hooks that make and remove worktrees
//! instead of git; and the other values a repository may set that run or
//! reach a program (issue 16): `archive.summary_command`,
//! `naming.command` and each `[env]` / `[env.secret]` variable.
//!
//! A command is a shell command line written by the user (in their
//! `config.toml`) or by a repository (in its `.tandem.toml`). A
//! repository's commands and variables take effect only once the user
//! approved their exact content: approvals are keyed by a SHA-256 of the
//! repository, the kind and the text (`NAME=value` for a variable), so a
//! changed value needs a new approval. Values reach commands through
//! `TANDEM_*` environment variables, never by pasting into the command
//! line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::config::{Config, Source};
use crate::repo::Repository;
use crate::store::{Store, StoreError};

/// The kinds of hook, by their config key under `[hooks]`.
pub const KINDS: &[&str] = &["setup", "teardown", "worktree_create", "worktree_remove"];

/// The other approvable kinds: a command by its dotted config key, and
/// `env` for a variable of `[env]` or `[env.secret]` (its text is
/// `NAME=value`).
pub const VALUE_KINDS: &[&str] = &["archive.summary_command", "naming.command", "env"];

/// One hook command that the repository asks to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// One of [`KINDS`].
    /// One of [`KINDS`] or [`VALUE_KINDS`].
    pub kind: &'static str,
    /// The command line, or `NAME=value` for an `env` variable.
    pub command: String,
    /// Key of its approval: SHA-256 (hex) of repository, kind and command.
    pub hash: String,
    /// Whether it comes from the repository's `.tandem.toml` (and so needs
    /// approval) rather than the user's own config.
    pub from_repo: bool,
}

/// Every hook command of the effective config, in [`KINDS`] order, then
/// every other approvable value ([`VALUE_KINDS`]); `[env]` variables only
/// as the repository set them.
#[must_use]
pub fn all(repo: &Repository, config: &Config) -> Vec<Hook> {
    let mut hooks = Vec::new();
    for &kind in KINDS {
        let commands: Vec<String> = match kind {
            "setup" => config.hooks.setup.clone(),
            "teardown" => config.hooks.teardown.clone(),
            "worktree_create" => vec![config.hooks.worktree_create.clone()],
            _ => vec![config.hooks.worktree_remove.clone()],
        };
        let from_repo = matches!(config.source(&format!("hooks.{kind}")), Source::Repo(_));
        for command in commands.into_iter().filter(|c| !c.trim().is_empty()) {
            let hash = hash(&repo.common_dir, kind, &command);
            hooks.push(Hook { kind, command, hash, from_repo });
        }
    }
    let mut push = |kind: &'static str, key: &str, command: String| {
        let from_repo = matches!(config.source(key), Source::Repo(_));
        let hash = hash(&repo.common_dir, kind, &command);
        hooks.push(Hook { kind, command, hash, from_repo });
    };
    for (kind, command) in
        [("archive.summary_command", &config.archive.summary_command), ("naming.command", &config.naming.command)]
    {
        if !command.trim().is_empty() {
            push(kind, kind, command.clone());
        }
    }
    // Variables only as the repository set them: the user's own need no
    // approval, and their `[env.secret]` values are never shown.
    let from_repo = |key: &str| matches!(config.source(key), Source::Repo(_));
    for (name, value) in config.env.vars.iter().filter(|(name, _)| from_repo(&format!("env.{name}"))) {
        push("env", &format!("env.{name}"), format!("{name}={value}"));
    }
    for (name, value) in config.env.secret.iter().filter(|(name, _)| from_repo(&format!("env.secret.{name}"))) {
        push("env", &format!("env.secret.{name}"), format!("{name}={value}"));
    }
    hooks
}

/// `config` with every value of [`VALUE_KINDS`] that the repository set
/// and the user has not approved taken out: such a command is as if
/// empty (tandem's own fallback runs instead) and such a variable is not
/// passed. Hooks of [`KINDS`] stay: they are checked where they run
/// ([`may_run`]), which reports a skipped one.
///
/// # Errors
/// [`StoreError`].
pub fn approved_config(store: &Store, repo: &Repository, config: &Config) -> Result<Config, StoreError> {
    let mut config = config.clone();
    for hook in all(repo, &config) {
        if KINDS.contains(&hook.kind) || may_run(store, &hook)? {
            continue;
        }
        match hook.kind {
            "archive.summary_command" => config.archive.summary_command.clear(),
            "naming.command" => config.naming.command.clear(),
            _ => {
                let name = hook.command.split_once('=').map_or(hook.command.as_str(), |(name, _)| name);
                let drops = |map: &std::collections::BTreeMap<String, String>| {
                    map.get(name).is_some_and(|v| format!("{name}={v}") == hook.command)
                };
                if drops(&config.env.vars) {
                    config.env.vars.remove(name);
                }
                if drops(&config.env.secret) {
                    config.env.secret.remove(name);
                }
            }
        }
    }
    Ok(config)
}

/// The approval key of a command.
#[must_use]
pub fn hash(common_dir: &Path, kind: &str, command: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(common_dir.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(command.as_bytes());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The repository's hook commands that still need the user's approval.
///
/// # Errors
/// [`StoreError`].
pub fn unapproved(store: &Store, repo: &Repository, config: &Config) -> Result<Vec<Hook>, StoreError> {
    let mut out = Vec::new();
    for hook in all(repo, config) {
        if hook.from_repo && !store.hook_approved(&hook.hash)? {
            out.push(hook);
        }
    }
    Ok(out)
}

/// Records the approval of each hook.
///
/// # Errors
/// [`StoreError`].
pub fn approve(store: &Store, repo: &Repository, hooks: &[Hook]) -> Result<(), StoreError> {
    for hook in hooks {
        store.approve_hook(&hook.hash, &hook.command, &repo.root)?;
    }
    Ok(())
}

/// Whether `hook` may run now: the user's own, or approved.
///
/// # Errors
/// [`StoreError`].
pub fn may_run(store: &Store, hook: &Hook) -> Result<bool, StoreError> {
    Ok(!hook.from_repo || store.hook_approved(&hook.hash)?)
}

/// What a hook is told about its session, as `TANDEM_*` variables.
#[derive(Debug, Clone)]
pub struct HookEnv {
    pub session: String,
    pub branch: String,
    pub worktree: PathBuf,
    pub base: String,
    pub base_commit: String,
    pub repo: PathBuf,
    /// The environment of the `tandem` call that asked (PATH, HOME, …).
    pub inherited: Vec<(String, String)>,
}

impl HookEnv {
    /// The whole environment a hook gets: the inherited one without
    /// `GIT_*`, then tandem's `TANDEM_*`.
    fn vars(&self) -> Vec<(String, String)> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut vars: Vec<(String, String)> =
            self.inherited.iter().filter(|(k, _)| !k.starts_with("GIT_")).cloned().collect();
        vars.extend([
            ("TANDEM_SESSION".to_owned(), self.session.clone()),
            ("TANDEM_BRANCH".to_owned(), self.branch.clone()),
            ("TANDEM_WORKTREE".to_owned(), path(&self.worktree)),
            ("TANDEM_BASE".to_owned(), self.base.clone()),
            ("TANDEM_BASE_COMMIT".to_owned(), self.base_commit.clone()),
            ("TANDEM_REPO".to_owned(), path(&self.repo)),
        ]);
        vars
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env_clear();
        cmd.envs(self.vars());
    }

    /// The JSON a replacement hook gets on stdin.
    #[must_use]
    pub fn json(&self) -> String {
        serde_json::json!({
            "name": self.session,
            "branch": self.branch,
            "base": self.base,
            "base_commit": self.base_commit,
            "repository": self.repo,
            "path": self.worktree,
        })
        .to_string()
    }
}

/// Runs `command` with `sh -c` in `cwd`, inside `fence` when the session
/// is sandboxed, its output appended to `log`.
/// `Err` says how it failed, in a phrase.
///
/// # Errors
/// A phrase like ``setup hook `make` failed (exit 2)``.
pub fn run(
    kind: &str,
    command: &str,
    cwd: &Path,
    env: &HookEnv,
    log: &Path,
    fence: Option<&crate::sandbox::Fence>,
) -> Result<(), String> {
    let mut argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()];
    if let Some(fence) = fence {
        argv = fence.wrap(&argv, &env.vars(), false).map_err(|e| format!("{kind} hook `{command}`: {e}"))?;
    }
    let failed = |e: std::io::Error| format!("{kind} hook `{command}`: {e}");
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir(cwd).stdin(Stdio::null());
    env.apply(&mut cmd);
    let mut out = crate::paths::append_private(log).map_err(|e| e.to_string())?;
    let _ = writeln!(out, "$ {command}   # {kind} hook");
    // Its output reaches the log through a pipe, secrets masked (issue
    // 16): the hook has the caller's environment, keys and tokens too.
    let (mut reader, writer) = std::io::pipe().map_err(failed)?;
    cmd.stdout(writer.try_clone().map_err(failed)?).stderr(writer);
    let mut child = cmd.spawn().map_err(failed)?;
    drop(cmd);
    let secrets = super::env::secret_values(&env.vars());
    let (done, copied) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut masker = super::mask::Masker::new(&secrets);
        let mut buf = [0u8; 8192];
        loop {
            match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = out.write_all(&masker.push(&buf[..n]));
                }
            }
        }
        let _ = out.write_all(&masker.finish());
        let _ = done.send(());
    });
    let status = child.wait().map_err(failed)?;
    // A process the hook left running may hold the pipe open: its output
    // goes on to the log, and the hook is done.
    let _ = copied.recv_timeout(std::time::Duration::from_secs(2));
    if status.success() {
        Ok(())
    } else {
        let how = status.code().map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
        Err(format!("{kind} hook `{command}` failed ({how}); see {}", log.display()))
    }
}

/// Runs a replacement hook: JSON on stdin, and its stdout's last
/// non-empty line back (the create hook's path).
///
/// # Errors
/// A phrase saying how it failed.
pub fn run_replacement(kind: &str, command: &str, cwd: &Path, env: &HookEnv) -> Result<String, String> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command).current_dir(cwd).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    env.apply(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("{kind} hook `{command}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{}", env.json());
    }
    let out = child.wait_with_output().map_err(|e| format!("{kind} hook `{command}`: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(format!("{kind} hook `{command}` failed: {}", last.trim()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RepoTrust, repo_trust};

    /// Every key a repository's value of which needs approval (issue 16)
    /// is listed by [`all`], so `hooks show` shows it and `hooks approve`
    /// approves it, and [`approved_config`] holds it back until then.
    #[test]
    fn every_value_that_needs_approval_is_listed_and_held_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository {
            common_dir: dir.path().join(".git"),
            root: dir.path().to_path_buf(),
            worktree: dir.path().to_path_buf(),
        };
        let store = Store::open(&dir.path().join("tandem.db")).expect("store");
        let mut keys: Vec<(String, bool)> = Config::defaults()
            .entries()
            .into_iter()
            .filter(|(key, _, _)| repo_trust(key) == Some(RepoTrust::Approval))
            .map(|(key, value, _)| (key, value.starts_with('[')))
            .collect();
        keys.extend([("env.PROBE".to_owned(), false), ("env.secret.PROBE".to_owned(), false)]);
        assert!(keys.len() >= 8, "{keys:?}");
        for (key, is_list) in keys {
            let (section, name) = key.rsplit_once('.').expect("dotted");
            let probe = format!("probe-{}", key.replace('.', "-"));
            let value = if is_list { format!("[\"{probe}\"]") } else { format!("\"{probe}\"") };
            std::fs::write(dir.path().join(".tandem.toml"), format!("[{section}]\n{name} = {value}\n")).expect("write");
            let config =
                Config::load_with_env(&dir.path().join("user.toml"), Some(&dir.path().join(".tandem.toml")), |_| None)
                    .expect("config");
            let hooks = all(&repo, &config);
            assert!(
                hooks.iter().any(|h| h.from_repo && h.command.contains(&probe)),
                "`{key}` needs approval but `hooks::all` does not list it: {hooks:?}"
            );
            let held = approved_config(&store, &repo, &config).expect("gate");
            let left = held.entries().into_iter().filter(|(_, v, _)| v.contains(&probe)).count();
            let hooks_kind = key.starts_with("hooks.");
            assert_eq!(left, usize::from(hooks_kind), "`{key}` is not held back (hooks are checked where they run)");
            approve(&store, &repo, &hooks).expect("approve");
            let held = approved_config(&store, &repo, &config).expect("gate");
            assert!(
                held.entries().iter().any(|(_, v, _)| v.contains(&probe)) || key.starts_with("env.secret"),
                "{key}"
            );
            assert!(unapproved(&store, &repo, &config).expect("unapproved").is_empty(), "{key}");
        }
    }

    #[test]
    fn hashes_depend_on_repository_kind_and_content() {
        let a = hash(Path::new("/r/.git"), "setup", "make");
        assert_eq!(a, hash(Path::new("/r/.git"), "setup", "make"));
        assert_ne!(a, hash(Path::new("/r/.git"), "setup", "make "));
        assert_ne!(a, hash(Path::new("/r/.git"), "teardown", "make"));
        assert_ne!(a, hash(Path::new("/other/.git"), "setup", "make"));
        assert_eq!(a.len(), 64);
    }
}
