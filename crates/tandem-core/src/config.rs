//! Layered configuration: built-in defaults (`config.toml` beside this
//! file) < the user's `config.toml` < the repository's `.tandem.toml` <
//! environment variables (`TANDEM_DETACH_KEY`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

const DEFAULTS: &str = include_str!("config.toml");

/// Everything configurable; see `config.toml` for each key's meaning.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub attach: AttachConfig,
    pub stop: StopConfig,
    pub branch: BranchConfig,
    pub worktrees: WorktreesConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AttachConfig {
    pub detach_key: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StopConfig {
    /// Milliseconds between the polite signals and SIGKILL.
    pub grace_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BranchConfig {
    pub protected: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorktreesConfig {
    pub dir: String,
}

/// Errors from [`Config::load`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {error}; fix or remove the file", path.display())]
    Parse { path: PathBuf, error: String },
}

impl Config {
    /// Loads the layers: `user_file` and `repo_file` may be absent.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] when a file is not valid TOML or has a value
    /// of the wrong type.
    pub fn load(user_file: &Path, repo_file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut merged: toml::Table = DEFAULTS.parse().expect("built-in config.toml is valid TOML");
        for path in std::iter::once(user_file).chain(repo_file) {
            let Ok(text) = std::fs::read_to_string(path) else { continue };
            let layer: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_path_buf(),
                error: e.message().to_owned(),
            })?;
            merge(&mut merged, layer);
        }
        if let Ok(key) = std::env::var("TANDEM_DETACH_KEY") {
            let mut attach = toml::Table::new();
            attach.insert("detach_key".to_owned(), toml::Value::String(key));
            let mut layer = toml::Table::new();
            layer.insert("attach".to_owned(), toml::Value::Table(attach));
            merge(&mut merged, layer);
        }
        let path = repo_file.unwrap_or(user_file).to_path_buf();
        toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse { path, error: e.message().to_owned() })
    }

    /// The built-in defaults alone.
    #[must_use]
    pub fn defaults() -> Config {
        toml::from_str(DEFAULTS).expect("built-in config.toml matches Config")
    }
}

fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_key_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.toml");
        let repo = dir.path().join("repo.toml");
        std::fs::write(&user, "[stop]\ngrace_ms = 100\n[branch]\nprotected = [\"release\"]\n").expect("write");
        std::fs::write(&repo, "[stop]\ngrace_ms = 200\n").expect("write");
        let config = Config::load(&user, Some(&repo)).expect("config");
        assert_eq!(config.stop.grace_ms, 200);
        assert_eq!(config.branch.protected, vec!["release".to_owned()]);
        assert_eq!(config.attach.detach_key, Config::defaults().attach.detach_key);
    }

    #[test]
    fn bad_types_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("config.toml");
        std::fs::write(&user, "[stop]\ngrace_ms = \"soon\"\n").expect("write");
        let err = Config::load(&user, None).expect_err("bad type");
        assert!(err.to_string().contains("config.toml"), "{err}");
    }
}
