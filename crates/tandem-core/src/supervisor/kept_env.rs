//! A session's own environment for `respawn`, `restore` and `fork`
//! (issue 19): what `new` recorded ([`RecordedEnv`], no secret's value),
//! plus the secrets this supervisor keeps in memory ([`Kept`]): the
//! caller's secret variables and the env files' values, read once by the
//! CLI and sent over the private socket. Nothing here reaches the disk.
//!
//! After a supervisor restart the memory is empty: a caller's secret is
//! then taken from the environment of the command that asks (it is the
//! user's shell, where it came from) or named as missing in a note; an
//! env file is read again, and one that cannot be (a `<(…)`) fails with
//! [`env::EnvError::Missing`], saying how to give it again.

use std::path::PathBuf;

use crate::protocol::{EnvChoice, EnvFile};
use crate::session::SessionError;
use crate::session::env::{self, RecordedEnv};
use crate::store::{Session, Store};

use super::State;

/// The secrets of one session this supervisor holds in memory.
#[derive(Debug, Clone, Default)]
pub(super) struct Kept {
    /// The caller's variables that are secrets ([`env::is_caller_secret`]).
    pub(super) caller: Vec<(String, String)>,
    /// Its env files' values.
    pub(super) files: Vec<EnvFile>,
    /// Its own `--env` pairs that are secrets by name.
    pub(super) vars: Vec<(String, String)>,
}

/// A session's environment for one start of its agent.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionEnv {
    /// The caller layer ([`env::layered`]): the recorded one, secrets
    /// filled in.
    pub(super) caller: Vec<(String, String)>,
    /// Its env files' values.
    pub(super) files: Vec<EnvFile>,
    /// Its own `--env` pairs (secrets too), `choice.vars` merged in.
    pub(super) vars: Vec<(String, String)>,
    /// The record of `caller` and `files` as stored, and whether they
    /// changed (a new record is then made from them).
    pub(super) recorded: Option<RecordedEnv>,
    pub(super) changed: bool,
    /// What the user should know: secrets that are missing.
    pub(super) notes: Vec<String>,
}

impl SessionEnv {
    /// The env files' paths.
    pub(super) fn file_paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    /// What to keep in memory for the session these are for.
    pub(super) fn kept(&self) -> Kept {
        let caller = self.caller.iter().filter(|(k, _)| env::is_caller_secret(&self.caller, k)).cloned().collect();
        let vars = self.vars.iter().filter(|(k, _)| env::is_secret_name(k)).cloned().collect();
        Kept { caller, files: self.files.clone(), vars }
    }
}

/// Keeps `kept` in memory for `session_id`.
pub(super) fn keep(state: &State, session_id: &str, kept: Kept) {
    state.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(session_id.to_owned(), kept);
}

/// `session`'s environment, as `choice` asks: by default the recorded
/// one with its secrets from memory; `caller` is the asking command's
/// environment, used for `choice.from_shell`, for a session made before
/// environments were recorded, and for a caller's secret the memory
/// lacks. `again` is the command that would give a missing env file
/// again (`tandem respawn NAME`).
///
/// # Errors
/// [`env::EnvError::Missing`] for an env file neither kept nor readable;
/// [`SessionError::Store`].
pub(super) fn resolve(
    state: &State,
    store: &Store,
    session: &Session,
    caller: &[(String, String)],
    choice: &EnvChoice,
    again: &str,
) -> Result<SessionEnv, SessionError> {
    let kept = state
        .kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&session.id)
        .cloned()
        .unwrap_or_default();
    let recorded = store.recorded_env(&session.id)?;
    let mut notes = Vec::new();
    let (caller_layer, mut changed) = match &recorded {
        Some(recorded) if !choice.from_shell => {
            let mut vars = recorded.vars.clone();
            let mut missing = Vec::new();
            for name in &recorded.secrets {
                let value = kept.caller.iter().chain(caller).find(|(k, _)| k == name);
                match value {
                    Some((k, v)) => vars.push((k.clone(), v.clone())),
                    None => missing.push(name.clone()),
                }
            }
            if !missing.is_empty() {
                notes.push(format!(
                    "the secret{} {} from the environment of `tandem new` {} not given to the agent: secrets are never stored, this supervisor started after the session, and this shell has none; export {} and run `{again}` again, or give {} with `{again} --env KEY=VALUE`",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    if missing.len() == 1 { "is" } else { "are" },
                    if missing.len() == 1 { "it" } else { "them" },
                    if missing.len() == 1 { "it" } else { "each" },
                ));
            }
            (vars, false)
        }
        _ => (caller.to_vec(), true),
    };
    let files = if choice.env_files.is_empty() {
        let names = recorded.as_ref().map(|r| r.files.as_slice()).unwrap_or_default();
        env::env_files(&session.env_files, &kept.files, names, again).map_err(SessionError::Env)?
    } else {
        changed = true;
        choice.env_files.clone()
    };
    // Its `--env` secrets are in memory, not in its row.
    let mut vars = session.env.clone();
    let mut missing = Vec::new();
    for name in recorded.iter().flat_map(|r| &r.env_secrets) {
        match kept.vars.iter().find(|(k, _)| k == name) {
            Some(pair) => vars.push(pair.clone()),
            None if choice.vars.iter().any(|(k, _)| k == name) => {}
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        notes.push(format!(
            "the secret{} {} given with `--env` {} not given to the agent: secrets are never stored and this supervisor started after the session; give {} again with `{again} --env KEY=VALUE`",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            if missing.len() == 1 { "it" } else { "them" },
        ));
    }
    for (k, v) in &choice.vars {
        vars.retain(|(key, _)| key != k);
        vars.push((k.clone(), v.clone()));
    }
    Ok(SessionEnv { caller: caller_layer, files, vars, recorded, changed, notes })
}

/// Stores what `resolved` changed of `session`'s environment (its
/// `--env` pairs, env files, the record) and keeps its secrets in memory.
///
/// # Errors
/// [`SessionError::Store`].
pub(super) fn remember(
    state: &State,
    store: &Store,
    session: &Session,
    resolved: &SessionEnv,
) -> Result<(), SessionError> {
    let paths = resolved.file_paths();
    let mut recorded = match (&resolved.recorded, resolved.changed) {
        (Some(recorded), false) => recorded.clone(),
        _ => {
            let read: Vec<_> = resolved.files.iter().map(|f| (f.path.clone(), f.vars.clone())).collect();
            RecordedEnv::split(&resolved.caller, &read).0
        }
    };
    let stored_vars = recorded.keep_out(&resolved.vars);
    if stored_vars != session.env || paths != session.env_files {
        store.set_env_layers(&session.id, &stored_vars, &paths)?;
    }
    if resolved.recorded.as_ref() != Some(&recorded) {
        store.set_recorded_env(&session.id, &recorded)?;
    }
    keep(state, &session.id, resolved.kept());
    Ok(())
}
