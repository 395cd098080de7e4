//! The rows every page shows, kept current: one thread follows the
//! supervisor's change stream ([`Tandem::subscribe`]) and remakes the
//! rows when anything changed; pages get them pushed over
//! `/api/events` (server-sent events), so no page polls.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tandem_core::client::{Listing, Tandem};
use tandem_core::config::Config;
use tandem_core::remote::poll::{Latest, Poller};
use tandem_core::rows::columns;
use tokio::sync::watch;

use crate::ServeOptions;

/// The rows of every repository shown, as JSON, at one change count.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Snapshot {
    /// The supervisor's change count these rows were made at.
    pub generation: u64,
    /// Unix seconds the rows were made at (ages count from it).
    pub now: i64,
    /// One entry per repository.
    pub repos: Vec<RepoRows>,
    /// Why the rows could not be made (the supervisor is gone, …);
    /// `None` when they were.
    pub error: Option<String>,
    /// Remote hosts' sessions (issue 21), as they last answered.
    pub remote: RemoteRows,
    /// This snapshot as JSON, made once when it is published
    /// ([`publish`]) for every page's event stream and `/api/sessions`.
    #[serde(skip)]
    pub json: Arc<str>,
}

/// `snapshot` with its [`Snapshot::json`] made, ready to share.
#[must_use]
pub fn publish(mut snapshot: Snapshot) -> Arc<Snapshot> {
    snapshot.json = serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".to_owned()).into();
    Arc::new(snapshot)
}

/// One repository's sessions.
#[derive(Debug, Clone, Serialize)]
pub struct RepoRows {
    /// Its main worktree.
    pub root: String,
    /// Its folder's name.
    pub name: String,
    /// Sessions as `tandem list --json` prints them (its key order).
    pub sessions: Box<serde_json::value::RawValue>,
    /// What the user should know.
    pub notes: Vec<String>,
    /// Whether conflict marks are being recomputed.
    pub marks_stale: bool,
}

/// Remote hosts' sessions: asked on a thread of their own every few
/// seconds and soon after a local change ([`Poller`]), so a slow host
/// never holds up the local rows; one that does not answer has its last
/// known rows, in state `unreachable`. Actions on them are not the
/// dashboard's: they run through the CLI (`tandem attach HOST:NAME`).
#[derive(Debug, Clone, Serialize)]
pub struct RemoteRows {
    /// Sessions as `tandem list --json` prints them, each with its
    /// `host`; empty when no remote is added.
    pub sessions: Box<serde_json::value::RawValue>,
    /// Why each host that did not answer did not.
    pub notes: Vec<String>,
}

impl Default for RemoteRows {
    fn default() -> RemoteRows {
        RemoteRows { sessions: empty_array(), notes: Vec::new() }
    }
}

impl RemoteRows {
    fn of(latest: &Latest) -> RemoteRows {
        RemoteRows {
            sessions: serde_json::value::to_raw_value(&columns::json(&latest.rows, tandem_core::unix_now()))
                .unwrap_or_else(|_| empty_array()),
            notes: latest.notes.clone(),
        }
    }
}

/// The rows now, for `options` (one repository or all).
///
/// # Errors
/// The client's error, in words.
pub fn snapshot(tandem: &Tandem, options: &ServeOptions, generation: u64) -> Snapshot {
    let listings: Result<Vec<(std::path::PathBuf, Listing)>, _> = match &options.repo {
        Some(root) => tandem.rows(root, false, options.quiet_secs, true).map(|l| vec![(root.clone(), l)]),
        None => tandem.rows_everywhere(false, options.quiet_secs, true),
    };
    match listings {
        Ok(listings) => {
            let now = listings.first().map_or_else(tandem_core::unix_now, |(_, l)| l.now);
            let repos = listings
                .into_iter()
                .map(|(root, l)| RepoRows {
                    name: root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    root: root.display().to_string(),
                    sessions: serde_json::value::to_raw_value(&columns::json(&l.rows, l.now))
                        .unwrap_or_else(|_| empty_array()),
                    notes: l.notes,
                    marks_stale: l.marks_stale,
                })
                .collect();
            Snapshot { generation, now, repos, error: None, remote: RemoteRows::default(), json: Arc::default() }
        }
        Err(e) => Snapshot {
            generation,
            now: tandem_core::unix_now(),
            repos: Vec::new(),
            error: Some(e.to_string()),
            remote: RemoteRows::default(),
            json: Arc::default(),
        },
    }
}

/// Starts the thread that keeps the rows current; answers the receiver
/// every page's event stream reads.
#[must_use]
pub fn follow(tandem: Tandem, options: ServeOptions) -> watch::Receiver<Arc<Snapshot>> {
    let first = snapshot(&tandem, &options, 0);
    // What the pages were last sent, to send nothing when it is the same.
    let mut sent = (serde_json::to_string(&first.repos).ok(), first.error.clone());
    let (tx, rx) = watch::channel(publish(first));
    let tx = Arc::new(tx);
    // Each new answer of the hosts replaces the remote rows alone.
    let remotes = {
        let tx = Arc::clone(&tx);
        let timeout = tandem_core::remote::timeout(Some(
            Config::load_lenient(&tandem.paths.config_dir.join("config.toml"), None).0.remote.timeout_secs,
        ));
        Poller::start(tandem.paths.clone(), timeout, tandem_core::remote::poll::EVERY, move |latest| {
            let remote = RemoteRows::of(latest);
            tx.send_modify(|s| {
                let mut next = (**s).clone();
                next.remote = remote;
                *s = publish(next);
            });
        })
    };
    std::thread::Builder::new()
        .name("tandem-web-live".into())
        .spawn(move || {
            loop {
                match tandem.subscribe() {
                    Ok(changes) => {
                        for generation in changes {
                            let Ok(generation) = generation else { break };
                            if tx.is_closed() {
                                return;
                            }
                            remotes.poke();
                            let mut next = snapshot(&tandem, &options, generation);
                            let shown = (serde_json::to_string(&next.repos).ok(), next.error.clone());
                            if shown != sent {
                                sent = shown;
                                // The hosts' rows as last answered stay.
                                tx.send_modify(|s| {
                                    next.remote = s.remote.clone();
                                    *s = publish(next);
                                });
                            }
                        }
                    }
                    Err(e) => {
                        tx.send_modify(|s| {
                            let mut next = (**s).clone();
                            next.error = Some(e.to_string());
                            sent.1.clone_from(&next.error);
                            *s = publish(next);
                        });
                    }
                }
                if tx.is_closed() {
                    return;
                }
                // The supervisor went away; it is started again by the
                // next subscribe.
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .expect("a thread starts");
    rx
}

fn empty_array() -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string("[]".to_owned()).expect("[] is JSON")
}

/// A session that moved into a group between two [`Snapshot`]s.
#[derive(Debug, Clone)]
pub struct Entered {
    /// Its repository's main worktree.
    pub root: String,
    /// Its `tandem list --json` row.
    pub row: serde_json::Value,
}

/// The transitions between two snapshots that pages and the notifier
/// share: the rows of `after` whose `group` is `group` (`needs_input`,
/// …) and whose session (by `id`) was not in that group in `before`.
/// A session new in `after` counts as entering. Nothing is reported when
/// either snapshot could not be made (`error`): rows that vanished with
/// the supervisor did not change state.
#[must_use]
pub fn entered(before: &Snapshot, after: &Snapshot, group: &str) -> Vec<Entered> {
    if before.error.is_some() || after.error.is_some() {
        return Vec::new();
    }
    let in_group = |snapshot: &Snapshot| -> Vec<Entered> {
        snapshot
            .repos
            .iter()
            .flat_map(|repo| {
                let rows: Vec<serde_json::Value> = serde_json::from_str(repo.sessions.get()).unwrap_or_default();
                rows.into_iter()
                    .filter(|row| row.get("group").and_then(serde_json::Value::as_str) == Some(group))
                    .map(|row| Entered { root: repo.root.clone(), row })
            })
            .collect()
    };
    let id = |e: &Entered| e.row.get("id").and_then(serde_json::Value::as_str).map(str::to_owned);
    let was: std::collections::HashSet<String> = in_group(before).iter().filter_map(id).collect();
    in_group(after).into_iter().filter(|e| id(e).is_some_and(|i| !was.contains(&i))).collect()
}
