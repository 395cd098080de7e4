//! A session's turns (issue 22): its checkpoints, what each changed, and
//! rewind with its undo, as `tandem checkpoints`, `tandem diff
//! --checkpoint` and `tandem rewind` do, through the same core calls.
//!
//! - `GET /api/sessions/{id}/checkpoints`: the array `tandem checkpoints
//!   NAME --json` prints (newest first, each with its `ref`).
//! - `GET /api/sessions/{id}/checkpoints/{n}/diff?to=M`: what checkpoint
//!   `n`'s turn changed (from the checkpoint before it, or the session's
//!   base commit for the first), or from `n` to `M`: `tandem diff
//!   --checkpoint N [--to M] --json`'s report with its unified patch (at
//!   most [`PATCH_LIMIT`] bytes; `truncated` when cut).
//! - `POST /api/sessions/{id}/rewind` with `{"checkpoint": N}` or
//!   `{"undo": true}`, and optionally `"files": [PATH…]` (only those,
//!   relative to the worktree's top) and `"stop": true` (stop an agent in
//!   the middle of a turn first): `tandem rewind --json`'s object
//!   (`before`, `to`, `written`, `deleted`, `head_moved`,
//!   `index_restored`) plus `message`, the line the CLI prints. Refused
//!   mid-turn without `stop` (409), for an unknown checkpoint or nothing
//!   to undo (404), for a path outside the worktree (400); nothing
//!   changes then. `--hard` is the CLI's only.
//!
//! The POST sits behind the same guard as every action (token, `Host`,
//! `Origin`: [`crate::auth`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use tandem_core::checkpoints::{self, Rewind, stat_text};
use tandem_core::ship;

use super::actions::find;
use super::error::ApiError;
use super::session::PATCH_LIMIT;
use crate::state::AppState;

/// The checkpoint routes, merged into [`super::router`].
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/sessions/{id}/checkpoints", get(list))
        .route("/api/sessions/{id}/checkpoints/{n}/diff", get(diff))
        .route("/api/sessions/{id}/rewind", post(rewind))
}

/// Runs `f` on tokio's blocking pool (the store and git block).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(ApiError::internal(format!("the request failed: {e}"))))
}

/// `GET /api/sessions/{id}/checkpoints`.
async fn list(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let (_, session) = find(&state.tandem, &id)?;
        let list = state.tandem.checkpoints(&session)?;
        let items = list.iter().map(|c| checkpoints::to_json(&session.id, c)).collect();
        Ok(Json(Value::Array(items)))
    })
    .await
}

/// The query of `GET /api/sessions/{id}/checkpoints/{n}/diff`.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    /// From checkpoint `n` to this one instead of `n`'s own turn.
    pub to: Option<u32>,
}

/// A checkpoint number from the path: 400 for anything but one.
fn number(text: &str) -> Result<u32, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad(format!(
            "`{}` is not a checkpoint number; GET …/checkpoints lists them",
            tandem_core::text::visible(text)
        ))
    })
}

/// `GET /api/sessions/{id}/checkpoints/{n}/diff`.
async fn diff(
    State(state): State<Arc<AppState>>,
    Path((id, n)): Path<(String, String)>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<ship::diff::DiffReport>, ApiError> {
    let n = number(&n)?;
    blocking(move || {
        let (_, session) = find(&state.tandem, &id)?;
        let store = state.tandem.store()?;
        let (from, to) = checkpoints::diff_range(&store, &session, n, query.to)?;
        Ok(Json(ship::diff::trees_report(&session, &from, &to, Some(PATCH_LIMIT))?))
    })
    .await
}

/// The body of `POST /api/sessions/{id}/rewind`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewindBody {
    checkpoint: Option<u32>,
    #[serde(default)]
    undo: bool,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    stop: bool,
}

/// `POST /api/sessions/{id}/rewind`.
async fn rewind(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: RewindBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "the request body is not the JSON object rewind takes ({{\"checkpoint\": N}} or {{\"undo\": true}}, \
             optionally \"files\" and \"stop\"): {e}"
        ))
    })?;
    match (body.checkpoint, body.undo) {
        (Some(_), true) | (None, false) => {
            return Err(ApiError::bad(
                "give either \"checkpoint\": N (rewind to it) or \"undo\": true (undo the last rewind)",
            ));
        }
        (None, true) if !body.files.is_empty() => {
            return Err(ApiError::bad("\"undo\" takes no \"files\": it undoes the whole last rewind"));
        }
        _ => {}
    }
    blocking(move || {
        let (_, session) = find(&state.tandem, &id)?;
        let how = Rewind { to: body.checkpoint, undo: body.undo, files: body.files.clone(), ..Rewind::default() };
        let done = state.tandem.rewind(&session, &how, body.stop)?;
        let what = if body.files.is_empty() { "its worktree".to_owned() } else { body.files.join(", ") };
        let message = format!(
            "rewound {}: {what} as at checkpoint {} ({} written back, {} deleted); what was there before is \
             checkpoint {} ({}), and undo goes back to it",
            session.slug,
            done.to.n,
            done.written,
            done.deleted,
            done.before.n,
            stat_text(&done.before)
        );
        let mut answer = serde_json::to_value(&done).map_err(|e| ApiError::internal(e.to_string()))?;
        answer["message"] = tandem_core::text::visible(&message).into_owned().into();
        Ok(Json(answer))
    })
    .await
}
