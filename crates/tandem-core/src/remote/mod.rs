//! Remote hosts (issue 21): other machines whose own supervisor tandem
//! reaches through the user's OpenSSH, `ssh DEST tandem proxy`, speaking
//! [`crate::protocol::RemoteRequest`]s over the channel's stdio.
//!
//! - [`Registry`]: the remotes the user added (`tandem remote add`), one
//!   JSON file each under `<state>/remotes/`, with the rows and facts the
//!   host last answered, so a host that does not answer still lists its
//!   sessions (as `unreachable`, with when it was last seen).
//! - [`ssh`]: the link itself: the system `ssh` with connection
//!   multiplexing (a control master per destination whose socket lives in
//!   tandem's private runtime folder), a timeout on every exchange, and
//!   the errors that say which host did not answer and why.
//!
//! Everything a remote sends (rows, names, paths, output) is untrusted:
//! front ends print it through [`crate::text::visible`], and nothing of it
//! reaches a local shell (arguments go to `ssh` and `git` as argv).

pub mod poll;
pub mod ssh;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Failure};
use crate::paths::Paths;
use crate::protocol::{RemoteFacts, RemoteReply, RemoteRequest};
use crate::rows::SessionRow;
use ssh::Link;

/// How long an exchange with a remote may take when neither the user's
/// config (`remote.timeout_secs`) nor `TANDEM_REMOTE_TIMEOUT` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeout of an exchange with a remote: `TANDEM_REMOTE_TIMEOUT`
/// (seconds, `2` or `2s` or `1.5`) when set, else `config_secs` (the
/// user's `remote.timeout_secs`), else [`DEFAULT_TIMEOUT`].
#[must_use]
pub fn timeout(config_secs: Option<f64>) -> Duration {
    let from_env = std::env::var("TANDEM_REMOTE_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().trim_end_matches('s').parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0);
    from_env
        .or(config_secs.filter(|s| s.is_finite() && *s > 0.0))
        .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs_f64(s.min(3600.0)))
}

/// A remote host the user added: its name in tandem (`HOST` in `tandem
/// list`, `--on HOST`, `HOST:NAME`) and what `ssh` is given to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    pub name: String,
    /// Anything `ssh` accepts: `user@host`, an alias of `~/.ssh/config`,
    /// `ssh://[user@]host[:port]`.
    pub destination: String,
    /// The `tandem` to run there; `None`: `tandem` on the remote's `PATH`
    /// with `~/.local/bin` first (where `tandem remote install` puts it).
    #[serde(default)]
    pub tandem: Option<String>,
    /// Unix seconds it was added.
    pub added_at: i64,
}

/// A remote with what it last said: the registry file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    pub remote: Remote,
    /// Unix seconds it last answered.
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// Why the last exchange failed, when it did (cleared by an answer).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Its facts, as last answered.
    #[serde(default)]
    pub facts: Option<RemoteFacts>,
    /// Its sessions, as last listed (archived ones left out).
    #[serde(default)]
    pub rows: Vec<SessionRow>,
}

impl Known {
    /// Its last known rows, marked `unreachable` with when the host was
    /// last seen and the state it reported then.
    #[must_use]
    pub fn unreachable_rows(&self) -> Vec<SessionRow> {
        self.rows
            .iter()
            .map(|r| SessionRow {
                known_state: Some(r.state.clone()),
                state: "unreachable".to_owned(),
                asking: None,
                host: Some(self.remote.name.clone()),
                last_seen: self.last_seen,
                ..r.clone()
            })
            .collect()
    }
}

/// Why a remote could not be used. Each names the host and the next
/// command.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "`{name}` is not a remote name: use 1 to 31 lowercase letters, digits and `-`, starting with a letter or digit (and not `local`)"
    )]
    BadName { name: String },
    #[error("`{destination}` is not an ssh destination: {why}")]
    BadDestination { destination: String, why: &'static str },
    #[error("remote `{name}` exists (it reaches {destination})")]
    Exists { name: String, destination: String },
    #[error("no remote is named `{name}`")]
    Unknown { name: String },
    /// `ssh` failed or the exchange took longer than the timeout.
    #[error("remote `{name}` did not answer: {why}")]
    Unreachable { name: String, why: String },
    /// `ssh` worked, but there is no `tandem` to run.
    #[error("remote `{name}` has no tandem: {why}")]
    NoTandem { name: String, why: String },
    /// Its tandem speaks another remote protocol.
    #[error(
        "remote `{name}` runs tandem {theirs} (remote protocol {their_protocol}), which this tandem {ours} (remote protocol {our_protocol}) cannot use"
    )]
    Incompatible { name: String, theirs: String, their_protocol: u32, ours: String, our_protocol: u32 },
    /// The remote tandem refused the request: its message and hint.
    #[error("on {name}: {message}")]
    Refused { name: String, message: String, hint: Option<String> },
    /// The proxy answered something that does not fit.
    #[error("remote `{name}` answered something unexpected: {what}")]
    Protocol { name: String, what: String },
    #[error("cannot keep the remotes in {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

impl RemoteError {
    /// The error as front ends print it: its kind, message and hints.
    #[must_use]
    pub fn failure(&self) -> Failure {
        use crate::text::visible;
        let message = self.to_string();
        match self {
            RemoteError::BadName { .. } | RemoteError::BadDestination { .. } => {
                Failure::new(ErrorKind::InvalidInput, message)
            }
            RemoteError::Exists { name, .. } => Failure::new(ErrorKind::Conflict, message)
                .hinted(format!("pick another name, or `tandem remote rm {name}` first")),
            RemoteError::Unknown { .. } => {
                Failure::new(ErrorKind::NotFound, message).hinted("`tandem remote list` shows the remotes you added")
            }
            RemoteError::Unreachable { name, .. } => Failure::new(ErrorKind::Unavailable, visible(&message))
                .hinted(format!("`tandem remote doctor {name}` checks the link step by step")),
            RemoteError::NoTandem { name, .. } | RemoteError::Incompatible { name, .. } => {
                Failure::new(ErrorKind::Unavailable, visible(&message))
                    .hinted(format!("`tandem remote install {name}` copies this tandem there"))
            }
            RemoteError::Refused { hint, .. } => {
                let failure = Failure::new(ErrorKind::Failed, visible(&message));
                match hint {
                    Some(h) => failure.hinted(visible(h)),
                    None => failure,
                }
            }
            RemoteError::Protocol { .. } => Failure::new(ErrorKind::Failed, visible(&message)),
            RemoteError::Io { .. } => Failure::new(ErrorKind::Failed, crate::error_chain(self)),
        }
    }
}

/// Checks a remote's name: 1 to 31 of `[a-z0-9-]`, starting with a
/// letter or digit, not `local` (the HOST of this machine's rows).
///
/// # Errors
/// [`RemoteError::BadName`].
pub fn check_name(name: &str) -> Result<(), RemoteError> {
    let ok = !name.is_empty()
        && name.len() <= 31
        && name != "local"
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok { Ok(()) } else { Err(RemoteError::BadName { name: name.to_owned() }) }
}

/// The remotes the user added: `<state>/remotes/<name>.json`, one file
/// each, replaced whole (write to a temporary file, then rename), so a
/// `tandem list` saving one host's rows never races another's.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    #[must_use]
    pub fn new(paths: &Paths) -> Registry {
        Registry { dir: paths.state_dir.join("remotes") }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn io(&self, error: std::io::Error) -> RemoteError {
        RemoteError::Io { path: self.dir.clone(), error }
    }

    /// Every remote, by name. A file that does not parse, or whose name
    /// is no remote name, is skipped.
    ///
    /// # Errors
    /// [`RemoteError::Io`] reading the folder.
    pub fn list(&self) -> Result<Vec<Known>, RemoteError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mut known: Vec<Known> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(|f| f.strip_suffix(".json")).map(str::to_owned))
            .filter_map(|name| self.get(&name).ok())
            .collect();
        known.sort_by(|a, b| a.remote.name.cmp(&b.remote.name));
        Ok(known)
    }

    /// Whether any remote is added (cheap: one folder read).
    #[must_use]
    pub fn any(&self) -> bool {
        std::fs::read_dir(&self.dir)
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_str().is_some_and(|f| f.ends_with(".json")))))
    }

    /// Runs `f` holding the registry's lock (`.lock` in its folder), so a
    /// read, change and write of one remote's file (an answer recorded)
    /// never interleaves with another's (`remote rm`, `remote add`).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, RemoteError>) -> Result<T, RemoteError> {
        crate::paths::create_private_dir(&self.dir).map_err(|e| self.io(e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join(".lock"))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        f()
    }

    /// Changes remote `name`'s file with `change`, under the registry's
    /// lock; a remote removed meanwhile stays removed.
    ///
    /// # Errors
    /// [`RemoteError::BadName`], [`RemoteError::Unknown`],
    /// [`RemoteError::Io`].
    pub fn update(&self, name: &str, change: impl FnOnce(&mut Known)) -> Result<(), RemoteError> {
        self.locked(|| {
            let mut known = self.get(name)?;
            change(&mut known);
            self.save(&known)
        })
    }

    /// The remote `name`. Its file's name is its name, whatever the
    /// `name` inside says (a file copied or edited by hand).
    ///
    /// # Errors
    /// [`RemoteError::BadName`], [`RemoteError::Unknown`].
    pub fn get(&self, name: &str) -> Result<Known, RemoteError> {
        check_name(name)?;
        let bytes = std::fs::read(self.file(name)).map_err(|_| RemoteError::Unknown { name: name.to_owned() })?;
        let mut known: Known =
            serde_json::from_slice(&bytes).map_err(|_| RemoteError::Unknown { name: name.to_owned() })?;
        name.clone_into(&mut known.remote.name);
        Ok(known)
    }

    /// Adds `remote`; refuses a name already added.
    ///
    /// # Errors
    /// [`RemoteError::BadName`], [`RemoteError::Exists`], [`RemoteError::Io`].
    pub fn add(&self, known: &Known) -> Result<(), RemoteError> {
        check_name(&known.remote.name)?;
        self.locked(|| {
            if let Ok(old) = self.get(&known.remote.name) {
                return Err(RemoteError::Exists { name: old.remote.name, destination: old.remote.destination });
            }
            self.save(known)
        })
    }

    /// Writes `known` over its file.
    ///
    /// # Errors
    /// [`RemoteError::BadName`], [`RemoteError::Io`].
    pub fn save(&self, known: &Known) -> Result<(), RemoteError> {
        check_name(&known.remote.name)?;
        crate::paths::create_private_dir(&self.dir).map_err(|e| self.io(e))?;
        let bytes = serde_json::to_vec(known).map_err(|e| self.io(std::io::Error::other(e)))?;
        let tmp = self.dir.join(format!(".{}.{}.tmp", known.remote.name, std::process::id()));
        crate::paths::write_private(&tmp, &bytes).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, self.file(&known.remote.name)).map_err(|e| self.io(e))
    }

    /// Removes remote `name` (its sessions stay on the host).
    ///
    /// # Errors
    /// [`RemoteError::Unknown`], [`RemoteError::Io`].
    pub fn remove(&self, name: &str) -> Result<Known, RemoteError> {
        let known = self.get(name)?;
        self.locked(|| std::fs::remove_file(self.file(name)).map_err(|e| self.io(e)))?;
        Ok(known)
    }

    /// Records an answer of `name`: its rows (and facts, when given), seen
    /// now. A remote removed meanwhile stays removed.
    pub fn seen(&self, name: &str, rows: Option<Vec<SessionRow>>, facts: Option<RemoteFacts>) {
        let _ = self.update(name, |known| {
            known.last_seen = Some(crate::unix_now());
            known.last_error = None;
            if let Some(rows) = rows {
                known.rows = rows;
            }
            if facts.is_some() {
                known.facts = facts;
            }
        });
    }

    /// Records that `name` did not answer, and why.
    pub fn failed(&self, name: &str, why: &str) {
        let _ = self.update(name, |known| known.last_error = Some(why.to_owned()));
    }

    /// The remotes whose last known rows hold a session named `name`.
    #[must_use]
    pub fn holding(&self, name: &str) -> Vec<Known> {
        self.list().unwrap_or_default().into_iter().filter(|k| k.rows.iter().any(|r| r.name == name)).collect()
    }
}

/// A `HOST:NAME` session address split, when `HOST` is a valid remote
/// name (`local` included, for this machine).
#[must_use]
pub fn split_address(text: &str) -> Option<(&str, &str)> {
    let (host, name) = text.split_once(':')?;
    (!name.is_empty() && (host == "local" || check_name(host).is_ok())).then_some((host, name))
}

/// The 16 hex digits that name a local repository's mirror on a remote:
/// from its common git dir, so two clones of one project get two mirrors.
#[must_use]
pub fn repo_key(common_dir: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(common_dir.as_os_str().as_encoded_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// What one remote answered to [`ask_all`].
pub struct Answer {
    pub known: Known,
    pub result: Answered,
}

/// A host's rows and facts (default facts when not asked), or why it did
/// not answer.
pub type Answered = Result<(Vec<SessionRow>, RemoteFacts), RemoteError>;

/// Asks every remote for its rows (and facts) at once and records what
/// each answered (or why not) in the registry. Waits at most `timeout`
/// in all: a host still silent then is reported as not answering (its
/// `ssh` is killed by its own watchdog). Answers in the registry's order.
pub fn ask_all(paths: &Paths, timeout: Duration, archived: bool, want_facts: bool) -> Vec<Answer> {
    let registry = Registry::new(paths);
    let known = registry.list().unwrap_or_default();
    let deadline = std::time::Instant::now() + timeout;
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, known) in known.iter().cloned().enumerate() {
        let paths = paths.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let result = (|| {
                let link = Link::new(&paths, known.remote.clone(), timeout)?;
                let channel = link.open()?;
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let rows = match channel.ask(&RemoteRequest::Rows { archived }, left)? {
                    RemoteReply::Rows { rows, .. } => rows,
                    _ => return Err(unexpected(&known.remote.name)),
                };
                let facts = if want_facts {
                    match link.ask(&RemoteRequest::Facts)? {
                        RemoteReply::Facts(f) => f,
                        _ => return Err(unexpected(&known.remote.name)),
                    }
                } else {
                    RemoteFacts::default()
                };
                Ok((rows, facts))
            })();
            // Recorded here, each host on its own thread, not one after
            // another once all have answered.
            let registry = Registry::new(&paths);
            let name = &known.remote.name;
            match &result {
                Ok((rows, facts)) if !archived => {
                    registry.seen(name, Some(rows.clone()), want_facts.then(|| facts.clone()));
                }
                Ok(_) => registry.seen(name, None, None),
                Err(e) => registry.failed(name, &e.to_string()),
            }
            let _ = tx.send((i, result));
        });
    }
    drop(tx);
    let mut results: Vec<Option<Answered>> = known.iter().map(|_| None).collect();
    // Facts take a second exchange: allow them one more timeout.
    let deadline = if want_facts { deadline + timeout } else { deadline };
    // Each host's own watchdog kills its ssh at the deadline; a moment
    // past it lets those threads end (no ssh outlives this command), and
    // whatever is still missing then counts as not answering.
    let grace = deadline + Duration::from_millis(500);
    while results.iter().any(Option::is_none) {
        let left = grace.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, result)) => results[i] = Some(result),
            Err(_) => break,
        }
    }
    known
        .into_iter()
        .zip(results)
        .map(|(known, result)| {
            let result = result.unwrap_or_else(|| {
                let e = RemoteError::Unreachable {
                    name: known.remote.name.clone(),
                    why: format!("no answer within {:.1} s", timeout.as_secs_f64()),
                };
                registry.failed(&known.remote.name, &e.to_string());
                Err(e)
            });
            Answer { known, result }
        })
        .collect()
}

fn unexpected(name: &str) -> RemoteError {
    RemoteError::Protocol { name: name.to_owned(), what: "a reply of another request".to_owned() }
}

/// Every remote's rows (`tandem list`, the agent view, the dashboard),
/// marked with its name: live ones from the hosts
/// that answered, the last known ones (`unreachable`) from the others;
/// and a note for each host that did not answer, saying why.
pub fn remote_rows(paths: &Paths, timeout: Duration, archived: bool) -> (Vec<SessionRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for answer in ask_all(paths, timeout, archived, false) {
        let name = answer.known.remote.name.clone();
        match answer.result {
            Ok((mut answered, _)) => {
                let now = crate::unix_now();
                for row in &mut answered {
                    row.host = Some(name.clone());
                    row.last_seen = Some(now);
                }
                rows.extend(answered);
            }
            Err(e) => {
                notes.push(crate::text::visible(&e.to_string()).into_owned());
                if !archived {
                    rows.extend(answer.known.unreachable_rows());
                }
            }
        }
    }
    (rows, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "build-1", "x86", "0box"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "local", "-x", "Big", "a b", "a:b", "a/b", &"x".repeat(32), "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_split_on_a_remote_name_only() {
        assert_eq!(split_address("gpu:fix"), Some(("gpu", "fix")));
        assert_eq!(split_address("local:fix"), Some(("local", "fix")));
        assert_eq!(split_address("fix"), None);
        assert_eq!(split_address("Bad Host:fix"), None);
        assert_eq!(split_address("gpu:"), None);
    }

    #[test]
    fn the_registry_adds_refuses_twice_and_removes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let registry = Registry { dir: tmp.path().join("remotes") };
        assert!(registry.list().expect("empty").is_empty());
        let known = Known {
            remote: Remote { name: "gpu".into(), destination: "me@gpu".into(), tandem: None, added_at: 1 },
            last_seen: None,
            last_error: None,
            facts: None,
            rows: vec![SessionRow { name: "fix".into(), state: "running".into(), ..SessionRow::default() }],
        };
        registry.add(&known).expect("added");
        assert!(matches!(registry.add(&known), Err(RemoteError::Exists { .. })));
        assert_eq!(registry.holding("fix").len(), 1);
        let rows = registry.get("gpu").expect("get").unreachable_rows();
        assert_eq!(rows[0].state, "unreachable");
        assert_eq!(rows[0].known_state.as_deref(), Some("running"));
        assert!(rows[0].state_text().starts_with("unreachable (was running, never seen"), "{}", rows[0].state_text());
        registry.remove("gpu").expect("removed");
        assert!(matches!(registry.get("gpu"), Err(RemoteError::Unknown { .. })));
    }

    /// Attack (a race): `remote rm` while a `tandem list` records that
    /// host's answer. The answer's save came after the removal and
    /// brought the remote back. Removed stays removed.
    #[test]
    fn a_remote_removed_while_its_answer_is_recorded_stays_removed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let registry = Registry { dir: tmp.path().join("remotes") };
        let known = Known {
            remote: Remote { name: "gpu".into(), destination: "me@gpu".into(), tandem: None, added_at: 1 },
            last_seen: None,
            last_error: None,
            facts: None,
            rows: Vec::new(),
        };
        for round in 0..300 {
            registry.add(&known).expect("added");
            let recorder = {
                let registry = registry.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        registry.seen("gpu", Some(Vec::new()), None);
                    }
                })
            };
            std::thread::yield_now();
            registry.remove("gpu").expect("removed");
            recorder.join().expect("recorder");
            assert!(registry.get("gpu").is_err(), "round {round}: the removed remote came back");
        }
    }

    /// Attack (a registry edited by hand): `gpu.json` copied to
    /// `gpu2.json` with another destination, and a file whose `name`
    /// climbs out of the folder. The file's name is the remote's name:
    /// `gpu2` is its own remote, an answer of `gpu2` is kept in
    /// `gpu2.json` (not over `gpu`'s), and nothing is written outside the
    /// folder.
    #[test]
    fn a_file_edited_by_hand_is_the_remote_its_name_says() {
        let tmp = tempfile::tempdir().expect("tmp");
        let registry = Registry { dir: tmp.path().join("state").join("remotes") };
        let known = Known {
            remote: Remote { name: "gpu".into(), destination: "me@gpu".into(), tandem: None, added_at: 1 },
            last_seen: None,
            last_error: None,
            facts: None,
            rows: Vec::new(),
        };
        registry.add(&known).expect("added");
        let text = std::fs::read_to_string(registry.file("gpu")).expect("read");
        std::fs::write(registry.file("gpu2"), text.replace("me@gpu", "me@gpu2")).expect("copy by hand");
        std::fs::write(registry.file("evil"), text.replace("\"gpu\"", "\"../../evil\"")).expect("edit by hand");

        let names: Vec<String> = registry.list().expect("list").into_iter().map(|k| k.remote.name).collect();
        assert_eq!(names, ["evil", "gpu", "gpu2"]);
        assert_eq!(registry.get("gpu2").expect("gpu2").remote.name, "gpu2");
        let row = SessionRow { name: "fix".into(), state: "running".into(), ..SessionRow::default() };
        registry.seen("gpu2", Some(vec![row]), None);
        registry.seen("evil", Some(Vec::new()), None);
        assert_eq!(registry.get("gpu").expect("gpu").remote.destination, "me@gpu");
        assert!(registry.get("gpu").expect("gpu").rows.is_empty(), "gpu2's answer went over gpu's file");
        assert_eq!(
            registry.holding("fix").iter().map(|k| k.remote.destination.as_str()).collect::<Vec<_>>(),
            ["me@gpu2"]
        );
        assert!(!tmp.path().join("evil.json").exists(), "written outside the registry's folder");
    }
}
