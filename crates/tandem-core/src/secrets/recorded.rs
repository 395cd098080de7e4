//! What is kept of the environment a session was made with (issue 19):
//! `respawn` and `fork` give the agent the session's environment, not
//! the caller's, so it is recorded at `new`, without a secret's value.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::is_secret_name;

/// The part of a session's environment that came from the caller of
/// `tandem new`, as stored: values of what is not a secret, names only of
/// what is ([`is_caller_secret`]), and the names of each env file's
/// variables (every value of one is a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEnv {
    /// The caller's variables that are not secrets, in order.
    pub vars: Vec<(String, String)>,
    /// The names of the caller's variables that are secrets.
    pub secrets: Vec<String>,
    /// Each env file, and the names of its variables.
    pub files: Vec<(PathBuf, Vec<String>)>,
    /// The names of the session's own `--env` pairs that are secrets by
    /// name ([`is_secret_name`]): kept out of the session's row too.
    #[serde(default)]
    pub env_secrets: Vec<String>,
}

/// Whether the caller's variable `key` is a secret: by its name
/// ([`is_secret_name`]), or because the caller's own
/// `TANDEM_SECRET_KEYS` names it (a command run inside a session's agent
/// got it from an env file).
#[must_use]
pub fn is_caller_secret(caller: &[(String, String)], key: &str) -> bool {
    is_secret_name(key)
        || caller
            .iter()
            .find(|(k, _)| k == "TANDEM_SECRET_KEYS")
            .is_some_and(|(_, names)| names.split(',').any(|n| n == key))
}

impl RecordedEnv {
    /// Records the names of the secrets among `vars` (`--env` pairs) and
    /// returns the pairs to store: the others.
    pub fn keep_out(&mut self, vars: &[(String, String)]) -> Vec<(String, String)> {
        self.env_secrets = vars.iter().filter(|(k, _)| is_secret_name(k)).map(|(k, _)| k.clone()).collect();
        vars.iter().filter(|(k, _)| !is_secret_name(k)).cloned().collect()
    }

    /// Splits the caller's environment `caller` (and the env files read
    /// for it) into what is recorded and the secret pairs, which are not.
    #[must_use]
    pub fn split(
        caller: &[(String, String)],
        files: &[(PathBuf, Vec<(String, String)>)],
    ) -> (RecordedEnv, Vec<(String, String)>) {
        let mut recorded = RecordedEnv::default();
        let mut secrets = Vec::new();
        for (k, v) in caller {
            if is_caller_secret(caller, k) {
                recorded.secrets.push(k.clone());
                secrets.push((k.clone(), v.clone()));
            } else {
                recorded.vars.push((k.clone(), v.clone()));
            }
        }
        recorded.files =
            files.iter().map(|(path, vars)| (path.clone(), vars.iter().map(|(k, _)| k.clone()).collect())).collect();
        (recorded, secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recorded_by_name_only() {
        let caller: Vec<(String, String)> = [
            ("PATH", "/bin"),
            ("OPENAI_API_KEY", "sk-123456789"),
            ("TANDEM_SECRET_KEYS", "FROM_FILE"),
            ("FROM_FILE", "inherited-secret"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        let files = [(PathBuf::from("/dev/fd/63"), vec![("TOKEN".to_owned(), "x-secret".to_owned())])];
        let (recorded, secrets) = RecordedEnv::split(&caller, &files);
        let json = serde_json::to_string(&recorded).expect("json");
        assert!(!json.contains("sk-123456789") && !json.contains("inherited-secret") && !json.contains("x-secret"));
        assert_eq!(recorded.secrets, ["OPENAI_API_KEY", "FROM_FILE"]);
        assert_eq!(recorded.files, [(PathBuf::from("/dev/fd/63"), vec!["TOKEN".to_owned()])]);
        assert_eq!(secrets.len(), 2);
        assert!(recorded.vars.iter().any(|(k, _)| k == "PATH"));
    }
}
