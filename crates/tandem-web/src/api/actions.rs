//! `POST /api/sessions/{id}/{action}`: every session action of the CLI,
//! each a thin call of the same [`Tandem`] method or core function the
//! `tandem <action>` command makes, with its checks and its error texts.
//!
//! The body is a JSON object (or empty): `send {text}`, `approve
//! {message?}`, `deny {message?}`, `interrupt`, `stop`, `respawn`, `fork
//! {name?}`, `review {agent?, name?}`, `sync {mode?: "rebase"|"merge"}`,
//! `merge {mode?: "commit"|"squash"|"rebase"|"ff", into?, remote?}`, `pr
//! {draft?, title?, body?}`, `push`, `archive`, `restore`, `remove
//! {force?}`. The answer: 200 `{"ok": true, "message": <the line the CLI
//! prints>, "notes": [..], "session": <the session's row as `tandem list
//! --json` prints it, or null once it is gone>, "created": <row>}`
//! (`created`: fork's and review's new session), or 4xx/5xx `{"error":
//! <the CLI's text>}`; remove without `force` on unsaved work: 409 with
//! `unsaved`, what would be lost.
//!
//! Agents started from here (respawn, fork, review, restore) get the
//! server's own environment ([`process_env`]), as the CLI hands them the
//! shell's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tandem_core::client::{Created, RemoveOptions, ReviewOf, Stopped, Tandem};
use tandem_core::error::ErrorKind;
use tandem_core::protocol::EnvChoice;
use tandem_core::rows::columns;
use tandem_core::session::env::process_env;
use tandem_core::ship;
use tandem_core::ship::land::{self, MergeRequest};
use tandem_core::ship::pull_request::{self as pull, PullOptions};
use tandem_core::store::Session;

use super::error::ApiError;
use crate::state::AppState;

/// The terminal size an agent started from the web gets (rows, columns),
/// as the CLI's when not on a terminal; a page that attaches resizes it.
const SIZE: (u16, u16) = (24, 80);

/// Every action, in the order the pages show them.
pub const ACTIONS: &[&str] = &[
    "send",
    "approve",
    "deny",
    "interrupt",
    "stop",
    "respawn",
    "fork",
    "review",
    "sync",
    "merge",
    "pr",
    "push",
    "archive",
    "restore",
    "remove",
];

/// The action routes, to merge into [`super::router`].
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/sessions/{id}/{action}", post(act))
}

/// The request body, every action's fields (each reads its own).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: Option<String>,
    message: Option<String>,
    name: Option<String>,
    agent: Option<String>,
    force: Option<bool>,
    mode: Option<String>,
    into: Option<String>,
    remote: Option<bool>,
    draft: Option<bool>,
    title: Option<String>,
    body: Option<String>,
}

/// What an action did, before the session's row is added.
#[derive(Debug, Default)]
struct Done {
    message: String,
    notes: Vec<String>,
    /// A session it made (fork, review).
    created: Option<Session>,
    /// Whether the session is gone (remove).
    gone: bool,
}

impl Done {
    fn said(message: impl Into<String>) -> Done {
        Done { message: message.into(), ..Done::default() }
    }
}

async fn act(
    State(state): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Answer>, ApiError> {
    if !ACTIONS.contains(&action.as_str()) {
        return Err(ApiError::not_found(format!(
            "no action `{}`; the actions are {}",
            tandem_core::text::visible(&action),
            ACTIONS.join(", ")
        )));
    }
    let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad(format!("the request body is not the JSON object `{action}` takes: {e}")))?
    };
    let blocking = Arc::clone(&state);
    tokio::task::spawn_blocking(move || run(&blocking, &id, &action, body))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map(Json)
}

/// The session with id `id`, and its repository's main worktree.
///
/// # Errors
/// 404 when there is none.
pub fn find(tandem: &Tandem, id: &str) -> Result<(PathBuf, Session), ApiError> {
    let unknown = || {
        ApiError::not_found(format!(
            "no session with id `{}`; the dashboard lists the sessions",
            tandem_core::text::visible(id)
        ))
    };
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(unknown());
    }
    let session = tandem.by_id(id)?.ok_or_else(unknown)?;
    let root = tandem.store()?.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
    Ok((root, session))
}

/// The session's row as `tandem list --json` prints it (archived or
/// live), `None` when the repository lists no such session.
///
/// # Errors
/// The client's.
pub fn row(state: &AppState, root: &std::path::Path, id: &str) -> Result<Option<Box<RawValue>>, ApiError> {
    for archived in [false, true] {
        let listing = state.tandem.rows(root, archived, state.options.quiet_secs, true)?;
        if let Some(row) = listing.rows.iter().find(|r| r.id == id) {
            let json = columns::json(std::slice::from_ref(row), listing.now);
            let raw = serde_json::value::to_raw_value(&json[0]).map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok(Some(raw));
        }
    }
    Ok(None)
}

/// A 200 answer (see the module's text); rows keep `tandem list
/// --json`'s key order.
#[derive(Serialize)]
pub struct Answer {
    ok: bool,
    message: String,
    notes: Vec<String>,
    session: Option<Box<RawValue>>,
    created: Option<Box<RawValue>>,
}

fn env() -> Vec<(String, String)> {
    process_env().0
}

/// One variable of the server's environment (a GitHub token for `pr`
/// and a remote `merge`, as the CLI reads the shell's).
fn server_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// A session the supervisor stopped for idleness, started again first
/// (as `tandem send`, `approve` and `deny` do).
fn woken(tandem: &Tandem, session: Session, notes: &mut Vec<String>) -> Result<Session, ApiError> {
    let (now, woken) = tandem.wake(&session, env(), SIZE)?;
    notes.extend(woken.map(|w| w.said(&session.slug)));
    Ok(now)
}

fn run(state: &AppState, id: &str, action: &str, body: Body) -> Result<Answer, ApiError> {
    let tandem = &state.tandem;
    let (root, session) = find(tandem, id)?;
    let mut notes = Vec::new();
    let done = match action {
        "send" => {
            let text = body.text.unwrap_or_default();
            if text.trim().is_empty() {
                return Err(tandem_core::client::ClientError::EmptyPrompt.into());
            }
            let session = woken(tandem, session, &mut notes)?;
            tandem.send(&session, &text, env())?;
            let words = text.split_whitespace().count();
            Done::said(format!("sent a prompt of {words} word(s) to session {}", session.slug))
        }
        "approve" => {
            let session = woken(tandem, session, &mut notes)?;
            tandem.answer(&session, true, None)?;
            Done::said(format!("approved what session {} asked", session.slug))
        }
        "deny" => {
            let session = woken(tandem, session, &mut notes)?;
            tandem.answer(&session, false, body.message.as_deref())?;
            Done::said(format!("denied what session {} asked", session.slug))
        }
        "interrupt" => {
            tandem.interrupt(&session)?;
            Done::said(format!("interrupted the turn of session {}; its agent keeps running", session.slug))
        }
        "stop" => match tandem.stop(&session)? {
            Stopped::NotRunning(state) => Done::said(format!("session {} is not running ({state})", session.slug)),
            Stopped::Stopped(s) => {
                Done::said(format!("stopped session {}; its worktree stays at {}", s.slug, s.path.display()))
            }
        },
        "respawn" => {
            let (s, resumed, more) = tandem.respawn_with(&session, env(), EnvChoice::default(), SIZE)?;
            notes.extend(more);
            let how = if resumed { ", resuming its conversation" } else { "" };
            Done::said(format!("respawned session {}{how}", s.slug))
        }
        "fork" => {
            let Created { session: new, notes: more } = tandem.fork(&session, body.name.as_deref(), env(), SIZE)?;
            notes.extend(more);
            Done {
                message: format!("forked session {} as {}", session.slug, new.slug),
                created: Some(new),
                ..Done::default()
            }
        }
        "review" => {
            let review =
                ReviewOf { session: &session, agent: body.agent.as_deref(), name: body.name.as_deref(), size: SIZE };
            if let Some(name) = review.name {
                tandem_core::session::slugs::validate(name).map_err(tandem_core::session::SessionError::from)?;
            }
            let Created { session: new, notes: more } = tandem.review(review, env())?;
            notes.extend(more);
            Done {
                message: format!("review session {} started for {}", new.slug, session.slug),
                created: Some(new),
                ..Done::default()
            }
        }
        "archive" => {
            let Created { session: s, notes: more } = tandem.archive(&session.id, env())?;
            notes.extend(more);
            let mut message = format!("archived session {} (branch {} kept)", s.slug, s.branch);
            if let Some(snapshot) = &s.archive_ref {
                message.push_str(&format!("; uncommitted work kept at {snapshot}"));
            }
            Done::said(message)
        }
        "restore" => {
            let Created { session: s, notes: more } = tandem.restore(&session, env(), SIZE)?;
            notes.extend(more);
            Done::said(format!("restored session {} in {}", s.slug, s.path.display()))
        }
        "remove" => {
            let options = RemoveOptions { force: body.force.unwrap_or(false), wait: false, purge: false };
            match tandem.remove(&root, &session.slug, options, env()) {
                Ok((report, more)) => {
                    notes.extend(more);
                    let mut message = format!(
                        "removed session {} (worktree {}, branch {})",
                        report.slug,
                        report.path.display(),
                        report.branch
                    );
                    if let Some(archive) = &report.archive_ref {
                        message.push_str(&format!(
                            "; snapshot kept at {archive}; restore it with: git switch -c {} {archive}",
                            report.branch
                        ));
                    }
                    Done { message, gone: true, ..Done::default() }
                }
                Err(e) => {
                    let error = ApiError::of(&e);
                    let refused = tandem_core::error::Failure::of(&e).kind == ErrorKind::Conflict && !options.force;
                    if refused {
                        let unsaved = row(state, &root, &session.id)?
                            .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
                            .and_then(|r| r.get("unsaved").cloned())
                            .unwrap_or(Value::Null);
                        return Err(error.with("unsaved", unsaved));
                    }
                    return Err(error);
                }
            }
        }
        "push" => {
            let (repo, config, session) = tandem.located(session)?;
            if tandem_core::session::is_protected(&repo, &config, &session.branch)? {
                return Err(ApiError::of(&ship::ShipError::Protected { branch: session.branch.clone() }));
            }
            let remote = ship::push_remote(&session)?;
            ship::push(&session, &remote)?;
            Done::said(format!("pushed {} to {remote} (upstream {remote}/{})", session.branch, session.branch))
        }
        "sync" => {
            let (repo, config, session) = tandem.located(session)?;
            let mode = match body.mode.as_deref() {
                None => None,
                Some("rebase") => Some(ship::SyncMode::Rebase),
                Some("merge") => Some(ship::SyncMode::Merge),
                Some(other) => {
                    return Err(ApiError::bad(format!(
                        "no sync mode `{}`; give \"rebase\" or \"merge\", or none",
                        tandem_core::text::visible(other)
                    )));
                }
            };
            let dir = tandem.paths.session_dir(&session.id);
            let timeout = Duration::from_millis(config.base.fetch_timeout_ms);
            let outcome = tandem_core::sandbox_git::rewriting(&tandem.paths, &repo, &session, || {
                ship::sync(&session, mode, timeout, &dir, &mut notes)
            })??;
            Done::said(ship::sync_said(&session, &outcome).map_err(ApiError::conflict)?)
        }
        "merge" => {
            let (repo, config, session) = tandem.located(session)?;
            let mode = match body.mode.as_deref() {
                None | Some("commit") => ship::MergeMode::Commit,
                Some("squash") => ship::MergeMode::Squash,
                Some("rebase") => ship::MergeMode::Rebase,
                Some("ff") => ship::MergeMode::FastForward,
                Some(other) => {
                    return Err(ApiError::bad(format!(
                        "no merge mode `{}`; give \"commit\", \"squash\", \"rebase\" or \"ff\", or none",
                        tandem_core::text::visible(other)
                    )));
                }
            };
            let request = MergeRequest { mode, into: body.into.as_deref(), remote: body.remote.unwrap_or(false) };
            let dir = tandem.paths.session_dir(&session.id);
            let landed = tandem_core::sandbox_git::rewriting(&tandem.paths, &repo, &session, || {
                land::merge(&repo.root, &config, &session, request, &dir, &server_env, &mut notes)
            })??;
            tandem.landed(&session, &landed)?;
            notes.push(format!("its work has landed; archiving session {} puts it away", session.slug));
            Done::said(landed.text)
        }
        "pr" => {
            let (repo, config, session) = tandem.located(session)?;
            let options = PullOptions {
                draft: body.draft.unwrap_or(false),
                title: body.title.as_deref(),
                body: body.body.as_deref(),
            };
            let opened = pull::open(&tandem.store()?, &repo, &config, &session, options, &server_env, &mut |_| {})?;
            tandem.watch_pull(&session.id, &opened.target);
            Done::said(format!("{}: {}", opened.line, opened.url))
        }
        _ => return Err(ApiError::not_found(format!("no action `{action}`"))),
    };
    let now = if done.gone { None } else { row(state, &root, id)? };
    let created = match &done.created {
        Some(new) => {
            let root = tandem.store()?.repo_root(new.repo_id)?.unwrap_or_else(|| root.clone());
            row(state, &root, &new.id)?
        }
        None => None,
    };
    notes.extend(done.notes);
    Ok(Answer { ok: true, message: done.message, notes, session: now, created })
}
