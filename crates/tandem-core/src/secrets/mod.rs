//! Secret values: which of an agent's variables hold one, reading the
//! `--env-file` files whose values all are, and masking them in what is
//! stored and shown (issue 16).
//!
//! The store masks events, titles and summaries, the host its PTY log,
//! the session lifecycle what it records of a new session: each takes
//! the rules from here, so none of them imports another for them (issue
//! 18: no import circles).

use std::path::{Path, PathBuf};

pub mod mask;
mod recorded;

pub use recorded::{RecordedEnv, is_caller_secret};

/// Why an environment cannot be built; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("`{text}` is not KEY=VALUE; write it like `--env PORT=3000`")]
    NotAPair { text: String },
    #[error("`{key}` is not a variable name; use letters, digits and `_`, not starting with a digit")]
    BadKey { key: String },
    #[error("cannot read the env file {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{}:{line}: not KEY=VALUE; fix the line (`# comments` and `export KEY=VALUE` are fine)", path.display())]
    BadLine { path: PathBuf, line: usize },
    /// A session's env file cannot be read again (a `<(…)` is read
    /// once) and this supervisor does not hold its values (it started
    /// after the session): its secrets, never stored, are missing.
    #[error(
        "the secret{} {} from the env file {} {} missing: the file cannot be read again ({error}) and secrets are never stored",
        if keys.len() == 1 { "" } else { "s" },
        if keys.is_empty() { "?".to_owned() } else { keys.join(", ") },
        path.display(),
        if keys.len() == 1 { "is" } else { "are" }
    )]
    Missing {
        path: PathBuf,
        /// The names its variables had.
        keys: Vec<String>,
        /// The command to run again with `--env-file FILE` (`tandem
        /// respawn NAME`).
        again: String,
        error: std::io::Error,
    },
}

/// Whether `key` is a portable variable name (`[A-Za-z_][A-Za-z0-9_]*`).
#[must_use]
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `KEY=VALUE` (the value may be empty or hold `=`).
///
/// # Errors
/// [`EnvError::NotAPair`], [`EnvError::BadKey`].
pub fn parse_pair(text: &str) -> Result<(String, String), EnvError> {
    let (key, value) = text.split_once('=').ok_or_else(|| EnvError::NotAPair { text: text.to_owned() })?;
    let key = key.trim();
    if !valid_key(key) {
        return Err(EnvError::BadKey { key: key.to_owned() });
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// The pairs of a dotenv file: `KEY=VALUE` lines, optionally `export `
/// first, values optionally in single or double quotes; blank lines and
/// `#` comments skipped.
///
/// # Errors
/// [`EnvError::Read`], [`EnvError::BadLine`] with its line number.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|error| EnvError::Read { path: path.to_owned(), error })?;
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let bad = || EnvError::BadLine { path: path.to_owned(), line: n + 1 };
        let (key, value) = parse_pair(line).map_err(|_| bad())?;
        let value = value.trim();
        let value = match (value.chars().next(), value.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(end)) if value.len() >= 2 && end == q => value[1..value.len() - 1].to_owned(),
            _ => value.to_owned(),
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// The mask that replaces a secret value wherever it would be stored.
pub const MASK: &str = "••••••";

/// Secret values shorter than this are not masked: masking every `1` or
/// `ab` in a history would garble it and protect nothing.
pub const MIN_SECRET_LEN: usize = 4;

/// Whether a variable's name says it holds a secret, whoever set it
/// (issue 16): `*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD*`,
/// `*_PASSWD`, `AWS_*`, and the bare `TOKEN`, `SECRET`, `API_KEY`; this
/// covers the agents' own keys (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`,
/// `GEMINI_API_KEY`, `ANTHROPIC_AUTH_TOKEN`, `CLAUDE_CODE_OAUTH_TOKEN`)
/// and GitHub's (`GH_TOKEN`, `GITHUB_TOKEN`). Compared without case.
/// A name that ends in `_DIR`, `_FILE` or `_PATH` names where a secret
/// is kept (`AWS_SHARED_CREDENTIALS_FILE`), not a secret.
#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    if ["_DIR", "_FILE", "_PATH"].iter().any(|end| name.ends_with(end)) {
        return false;
    }
    ["_API_KEY", "_TOKEN", "_SECRET", "_PASSWD"].iter().any(|end| name.ends_with(end))
        || name.contains("PASSWORD")
        || name.starts_with("AWS_")
        || ["TOKEN", "SECRET", "API_KEY"].contains(&name.as_str())
}

/// This process's environment as text: the variables whose name and
/// value are UTF-8, in `std::env::vars_os` order, and the names (lossily
/// decoded) of those left out. The protocol and the store hold text, so a
/// variable like `FOO=$'\xff'` or an `OLDPWD` of a non-UTF-8 folder cannot
/// be handed on; `std::env::vars` would panic on it (issue 17).
#[must_use]
pub fn process_env() -> (Vec<(String, String)>, Vec<String>) {
    let mut text = Vec::new();
    let mut left_out = Vec::new();
    for (key, value) in std::env::vars_os() {
        match (key.into_string(), value.into_string()) {
            (Ok(key), Ok(value)) => text.push((key, value)),
            (Ok(key), Err(_)) => left_out.push(key),
            (Err(key), _) => left_out.push(key.to_string_lossy().into_owned()),
        }
    }
    (text, left_out)
}

/// A value of a variable that is a secret only by its name
/// ([`is_secret_name`]) is masked in what is stored from this length on:
/// `AWS_DEFAULT_OUTPUT=json` must not mask every `json` in a history.
pub const MIN_NAMED_SECRET_LEN: usize = 8;

/// The secret values in an agent's environment `env`: those named by its
/// `TANDEM_SECRET_KEYS` (at least [`MIN_SECRET_LEN`] long) or with a
/// secret's name ([`is_secret_name`], at least [`MIN_NAMED_SECRET_LEN`]
/// long), longest first.
#[must_use]
pub fn secret_values(env: &[(String, String)]) -> Vec<String> {
    let keys: Vec<&str> = env
        .iter()
        .find(|(k, _)| k == "TANDEM_SECRET_KEYS")
        .map(|(_, v)| v.split(',').filter(|k| !k.is_empty()).collect())
        .unwrap_or_default();
    let mut values: Vec<String> = env
        .iter()
        .filter(|(k, v)| {
            (keys.contains(&k.as_str()) && v.len() >= MIN_SECRET_LEN)
                || (is_secret_name(k) && v.len() >= MIN_NAMED_SECRET_LEN)
        })
        .map(|(_, v)| v.clone())
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
}

/// `text` with every secret value replaced by [`MASK`], found in the
/// text a terminal would show ([`mask`]: escape sequences between
/// its characters do not hide one).
#[must_use]
pub fn redact<'a>(text: &'a str, secrets: &[String]) -> std::borrow::Cow<'a, str> {
    mask::mask_text(text, secrets)
}

/// The secret values ([`secret_values`]) in the environment process `pid`
/// started with (`/proc/PID/environ`); none when it cannot be read.
#[must_use]
pub fn process_secrets(pid: i32) -> Vec<String> {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/environ")) else { return Vec::new() };
    let vars: Vec<(String, String)> = raw
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            text.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    secret_values(&vars)
}

/// `value`, or a mask of it when `key` is one of `secrets` or has a
/// secret's name ([`is_secret_name`]).
#[must_use]
pub fn shown(key: &str, value: &str, secrets: &[String]) -> String {
    if secrets.iter().any(|s| s == key) || is_secret_name(key) { MASK.to_owned() } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_named_in_the_environment_are_masked() {
        let env: Vec<(String, String)> =
            [("TANDEM_SECRET_KEYS", "TOKEN,PIN"), ("TOKEN", "abc-123-xyz"), ("PIN", "12"), ("X", "abc-123-xyz-not")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .to_vec();
        let secrets = secret_values(&env);
        assert_eq!(secrets, ["abc-123-xyz"], "too short values are left alone");
        let named: Vec<(String, String)> = [
            ("OPENAI_API_KEY", "sk-1234567890"),
            ("gh_token", "ghp_abcdefgh"),
            ("DB_PASSWORD", "hunter2hunter2"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
            ("AWS_DEFAULT_OUTPUT", "json"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/home/u/.aws/credentials"),
            ("EDITOR", "vim-is-not-secret"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        let mut found = secret_values(&named);
        found.sort();
        assert_eq!(found, ["ghp_abcdefgh", "hunter2hunter2", "sk-1234567890", "wJalrXUtnFEMI"]);
        assert_eq!(shown("ANTHROPIC_API_KEY", "sk-ant", &[]), MASK, "shown masked whatever its length");
        assert_eq!(shown("EDITOR", "vim", &[]), "vim");
        assert_eq!(redact("token abc-123-xyz, again abc-123-xyz", &secrets), format!("token {MASK}, again {MASK}"));
        assert!(matches!(redact("nothing here", &secrets), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn pairs_and_env_files_parse_and_bad_ones_say_where() {
        assert_eq!(parse_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_pair("EMPTY=").unwrap(), ("EMPTY".into(), String::new()));
        assert!(matches!(parse_pair("novalue"), Err(EnvError::NotAPair { .. })));
        assert!(matches!(parse_pair("1X=y"), Err(EnvError::BadKey { .. })));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(".env");
        std::fs::write(&file, "# comment\n\nexport TOKEN=\"s3cr3t value\"\nPLAIN='x'\nNUM=42\n").expect("write");
        assert_eq!(
            read_env_file(&file).unwrap(),
            [("TOKEN".into(), "s3cr3t value".into()), ("PLAIN".into(), "x".into()), ("NUM".into(), "42".into())]
        );
        std::fs::write(&file, "OK=1\nbroken line\n").expect("write");
        assert!(matches!(read_env_file(&file), Err(EnvError::BadLine { line: 2, .. })));
    }
}
