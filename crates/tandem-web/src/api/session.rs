//! One session: its page, its row, its history, its diff and its live
//! terminal.
//!
//! - `GET /session/{id}`: the session page (`assets/session.html`).
//! - `GET /api/sessions/{id}`: `{repo, session}`, the repository's main
//!   worktree and the session's `tandem list --json` row (`null` when
//!   the session is no longer listed: removed).
//! - `GET /api/sessions/{id}/history?after=EVENT_ID&limit=N&q=TEXT`:
//!   `{events, last}`, the events `tandem history --json` prints (oldest
//!   first, after `after`, at most `limit`), only those matching the
//!   words `q` (the full-text search of `tandem search`) when given;
//!   `last` is the id to ask `after` next time.
//! - `GET /api/sessions/{id}/diff?against=base|remote|REF&uncommitted=1`:
//!   the report of `tandem diff --json` with its unified patch (at most
//!   [`PATCH_LIMIT`] bytes; `truncated` when cut).
//! - `GET /api/sessions/{id}/terminal`: a WebSocket, see [`terminal`].
//!
//! Sessions are named by their id (12 hex digits); an unknown one is a
//! 404 `{"error": …}`.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tandem_core::host::{client, screen};
use tandem_core::protocol::{self, ClientMode, ClientMsg, HostMsg, KIND_CONTROL, KIND_DATA};
use tandem_core::rows::columns;
use tandem_core::ship::{self, Against, ShipError};
use tandem_core::store::{Session, SessionState, Store};
use tokio::sync::mpsc;

use super::error::ApiError;
use crate::assets;
use crate::state::AppState;

/// The most bytes of patch a diff answer carries.
pub const PATCH_LIMIT: usize = 2 << 20;
/// The most events one history answer carries.
pub const HISTORY_MAX: usize = 5000;
/// Events a history answer carries when `limit` is not given.
pub const HISTORY_DEFAULT: usize = 1000;

/// The session routes, merged into [`super::router`].
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/session/{id}", get(|| async { assets::page("session.html") }))
        .route("/assets/vendor/{name}", get(assets::get_vendor))
        .route("/api/sessions/{id}", get(session))
        .route("/api/sessions/{id}/history", get(history))
        .route("/api/sessions/{id}/diff", get(diff))
        .route("/api/sessions/{id}/terminal", get(terminal))
}

/// Runs `f` on tokio's blocking pool (the store and git block).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(internal(format!("the request failed: {e}"))))
}

fn internal(message: impl Into<String>) -> ApiError {
    ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into(), extra: None }
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    internal(e.to_string())
}

/// The session whose id is `id`, with the open store.
///
/// # Errors
/// 404 when no session has that id (or it is no id).
fn lookup(state: &AppState, id: &str) -> Result<(Store, Session), ApiError> {
    let not_found = || ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "no session has the id `{}`; the dashboard lists every session",
            tandem_core::text::visible(id)
        ),
        extra: None,
    };
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let store = state.tandem.store()?;
    let session = store.session(id).map_err(store_error)?.ok_or_else(not_found)?;
    Ok((store, session))
}

/// `GET /api/sessions/{id}`.
async fn session(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    blocking(move || {
        let (store, session) = lookup(&state, &id)?;
        let root = store.repo_root(session.repo_id).map_err(store_error)?;
        let mut row = serde_json::Value::Null;
        if let Some(root) = root.as_ref().filter(|r| r.is_dir()) {
            let archived = session.state == SessionState::Archived;
            let listing = state.tandem.rows(root, archived, state.options.quiet_secs, true)?;
            let rows = serde_json::to_value(columns::json(&listing.rows, listing.now)).map_err(store_error)?;
            if let serde_json::Value::Array(rows) = rows {
                row = rows.into_iter().find(|r| r["id"] == session.id.as_str()).unwrap_or_default();
            }
        }
        let repo = root.map(|r| r.display().to_string());
        Ok(Json(serde_json::json!({ "repo": repo, "session": row })).into_response())
    })
    .await
}

/// The query of `GET /api/sessions/{id}/history`.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Only events with a greater id.
    #[serde(default)]
    pub after: i64,
    /// At most this many ([`HISTORY_DEFAULT`], at most [`HISTORY_MAX`]).
    pub limit: Option<usize>,
    /// Only events whose text holds all these words.
    pub q: Option<String>,
}

/// `GET /api/sessions/{id}/history`.
async fn history(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let (store, session) = lookup(&state, &id)?;
        let limit = query.limit.unwrap_or(HISTORY_DEFAULT).clamp(1, HISTORY_MAX);
        let words = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        let events = match words {
            None => store.events(&session.id, query.after, limit).map_err(store_error)?,
            Some(words) => {
                let ids = [session.id.clone()];
                // Matches in history order, like the unfiltered list.
                let mut events: Vec<_> = store
                    .search(words, Some(&ids), HISTORY_MAX)
                    .map_err(store_error)?
                    .into_iter()
                    .map(|hit| hit.event)
                    .filter(|e| e.id > query.after)
                    .collect();
                events.sort_by_key(|e| e.id);
                events.truncate(limit);
                events
            }
        };
        let last = events.last().map_or(query.after, |e| e.id);
        Ok(Json(serde_json::json!({ "events": events, "last": last })).into_response())
    })
    .await
}

/// The query of `GET /api/sessions/{id}/diff`.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    /// `base` (default), `remote` or a commit-ish.
    pub against: Option<String>,
    /// `1`/`true`: only the uncommitted work, against `HEAD`.
    pub uncommitted: Option<String>,
}

fn ship_error(e: ShipError) -> ApiError {
    let status = match &e {
        ShipError::BadRef { .. } | ShipError::NoRemote | ShipError::NoRemoteDefault => StatusCode::BAD_REQUEST,
        ShipError::NoWorktree { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError { status, message: e.to_string(), extra: None }
}

/// `GET /api/sessions/{id}/diff`.
async fn diff(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    let against = query.against.unwrap_or_else(|| "base".to_owned());
    if against.is_empty() || against.starts_with('-') {
        return Err(ApiError::bad(format!(
            "`{}` does not name a commit; pass base, remote, or an existing branch, tag or commit",
            tandem_core::text::visible(&against)
        )));
    }
    let uncommitted = matches!(query.uncommitted.as_deref(), Some("1" | "true" | "yes"));
    blocking(move || {
        let (_, session) = lookup(&state, &id)?;
        let report = ship::diff::report(&session, &Against::parse(&against), uncommitted, Some(PATCH_LIMIT))
            .map_err(ship_error)?;
        Ok(Json(report).into_response())
    })
    .await
}

/// What a terminal's browser sends (text frames, JSON).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromBrowser {
    /// Take control: input and resizes go to the agent from now on.
    Control,
    /// Give control back: read-only again.
    Release,
    /// Keys, as text.
    Input { data: String },
    /// The browser's terminal size, in cells.
    Resize { rows: u16, cols: u16 },
}

/// `GET /api/sessions/{id}/terminal`: the session's terminal over a
/// WebSocket.
///
/// The server attaches to the session's host as `tandem attach` does
/// ([`ClientMode::Attach`]) and sends:
/// - binary messages: exactly the bytes `tandem attach` gets (a redraw of
///   the screen, then the agent's output);
/// - text messages, JSON: first `{"type":"size","rows":R,"cols":C}` (the
///   agent's terminal size, for a read-only view to match it), then
///   `{"type":"control","on":BOOL}` after each control change,
///   `{"type":"exited","state":S,"exit_code":N}` when the agent ends,
///   `{"type":"error","message":M}` (then the socket closes when the
///   host is gone or the session does not run).
///
/// The browser sends text JSON: `{"type":"control"}` / `{"type":"release"}`,
/// `{"type":"input","data":…}`, `{"type":"resize","rows":R,"cols":C}`.
/// It is read-only until it sends `control`: input before that is
/// refused with an error message, and a resize is only remembered. A
/// read-only view attaches at the agent's current size, so it never
/// resizes the agent's terminal (the host resizes to an attaching
/// client's size, a no-op when it is the same); once in control, its
/// last size (and each later one) is passed to the host.
pub async fn terminal(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let lookup_state = state.clone();
    let session = blocking(move || lookup(&lookup_state, &id).map(|(_, s)| s)).await?;
    let paths = state.tandem.paths.clone();
    Ok(upgrade.on_upgrade(move |socket| serve_terminal(socket, paths, session)))
}

fn text(value: &serde_json::Value) -> Message {
    Message::Text(value.to_string().into())
}

fn error_text(message: &str) -> Message {
    text(&serde_json::json!({ "type": "error", "message": message }))
}

/// What the host sent, for the browser.
enum FromHost {
    Data(Vec<u8>),
    Json(serde_json::Value),
}

async fn serve_terminal(socket: WebSocket, paths: tandem_core::paths::Paths, session: Session) {
    let (mut sink, mut stream) = socket.split();
    let slug = session.slug.clone();
    let not_running = move || {
        format!(
            "session {} is not running; start it again with `tandem respawn {}` (or the Respawn button)",
            tandem_core::text::visible(&slug),
            tandem_core::text::visible(&slug)
        )
    };
    if tandem_core::session::facts::live_state(&session) != SessionState::Running {
        let _ = sink.send(error_text(&not_running())).await;
        let _ = sink.close().await;
        return;
    }
    let dir: PathBuf = paths.session_dir(&session.id);
    let id = session.id.clone();
    let connected = tokio::task::spawn_blocking(move || -> io::Result<(UnixStream, (u16, u16))> {
        let (rows, cols) = screen::read_size(&dir);
        let stream = client::connect(&paths, &id, ClientMode::Attach { rows, cols })?;
        Ok((stream, (rows, cols)))
    })
    .await;
    let (host, (rows, cols)) = match connected {
        Ok(Ok(connected)) => connected,
        _ => {
            let _ = sink.send(error_text(&not_running())).await;
            let _ = sink.close().await;
            return;
        }
    };
    let _ = sink.send(text(&serde_json::json!({ "type": "size", "rows": rows, "cols": cols }))).await;

    // The host's frames, read on a thread of their own.
    let (to_browser, mut from_host) = mpsc::channel::<FromHost>(64);
    let Ok(mut reader) = host.try_clone() else {
        let _ = sink.send(error_text("cannot read the session's host")).await;
        return;
    };
    std::thread::spawn(move || {
        loop {
            let out = match protocol::read_frame(&mut reader) {
                Ok(Some((KIND_DATA, bytes))) => FromHost::Data(bytes),
                Ok(Some((KIND_CONTROL, payload))) => match serde_json::from_slice::<HostMsg>(&payload) {
                    Ok(HostMsg::Exited { state, exit_code }) => {
                        FromHost::Json(serde_json::json!({ "type": "exited", "state": state, "exit_code": exit_code }))
                    }
                    Ok(HostMsg::Error { message }) => {
                        FromHost::Json(serde_json::json!({ "type": "error", "message": message }))
                    }
                    _ => continue,
                },
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            };
            if to_browser.blocking_send(out).is_err() {
                break;
            }
        }
    });
    // Frames to the host, written on a thread of their own.
    let (to_host, for_host) = std::sync::mpsc::channel::<(u8, Vec<u8>)>();
    let Ok(mut writer) = host.try_clone() else {
        let _ = sink.send(error_text("cannot write to the session's host")).await;
        return;
    };
    std::thread::spawn(move || {
        for (kind, bytes) in for_host {
            if protocol::write_frame(&mut writer, kind, &bytes).is_err() {
                break;
            }
        }
    });
    let resize = |rows: u16, cols: u16| {
        let msg = serde_json::to_vec(&ClientMsg::Resize { rows, cols }).unwrap_or_default();
        (KIND_CONTROL, msg)
    };

    let mut control = false;
    let mut size: Option<(u16, u16)> = None;
    loop {
        tokio::select! {
            out = from_host.recv() => {
                let message = match out {
                    Some(FromHost::Data(bytes)) => Message::Binary(bytes.into()),
                    Some(FromHost::Json(value)) => text(&value),
                    None => {
                        let _ = sink.send(error_text("the session's host closed the terminal (the agent ended, or the host is gone)")).await;
                        break;
                    }
                };
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(_)) | None => break,
                };
                let parsed = match message {
                    Message::Text(t) => serde_json::from_str::<FromBrowser>(t.as_str()),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let reply = match parsed {
                    Ok(FromBrowser::Control) => {
                        control = true;
                        if let Some((rows, cols)) = size {
                            let _ = to_host.send(resize(rows, cols));
                        }
                        Some(text(&serde_json::json!({ "type": "control", "on": true })))
                    }
                    Ok(FromBrowser::Release) => {
                        control = false;
                        Some(text(&serde_json::json!({ "type": "control", "on": false })))
                    }
                    Ok(FromBrowser::Input { data }) if control => {
                        let _ = to_host.send((KIND_DATA, data.into_bytes()));
                        None
                    }
                    Ok(FromBrowser::Input { .. }) => {
                        Some(error_text("this terminal is read-only; take control first to type"))
                    }
                    Ok(FromBrowser::Resize { rows, cols }) => {
                        size = Some((rows, cols));
                        if control {
                            let _ = to_host.send(resize(rows, cols));
                        }
                        None
                    }
                    Err(e) => Some(error_text(&format!(
                        "not a terminal message ({e}); send {{\"type\":\"control\"}}, input, resize or release"
                    ))),
                };
                if let Some(reply) = reply
                    && sink.send(reply).await.is_err()
                {
                    break;
                }
            }
        }
    }
    // Ends both threads: the reader sees the end, the writer's channel
    // closes with `to_host`.
    let _ = host.shutdown(std::net::Shutdown::Both);
    let _ = sink.close().await;
}
