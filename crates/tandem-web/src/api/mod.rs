//! The routes: pages, assets and the JSON API under `/api/`
//! (documented in `/api/openapi.json`, docs/web.md). Every route sits
//! behind [`crate::auth::guard`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use futures_util::Stream;
use futures_util::StreamExt;
use tokio_stream::wrappers::WatchStream;

use crate::assets;
use crate::auth;
use crate::state::AppState;

pub mod actions;
pub mod checkpoints;
pub mod error;
pub mod openapi;
pub mod pages;
pub mod session;

/// Every route, behind the guard. A route added here goes into
/// [`openapi::ROUTES`] too (a test walks this crate's `.route(` calls).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { assets::page("dashboard.html") }))
        .route("/assets/{name}", get(assets::get))
        .route("/api/sessions", get(sessions))
        .route("/api/events", get(events))
        .merge(actions::routes())
        .merge(session::routes())
        .merge(checkpoints::routes())
        .merge(pages::routes())
        .route("/api/openapi.json", get(|| async { Json(openapi::document()) }))
        .layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        .with_state(state)
}

/// `GET /api/sessions`: the rows now ([`crate::live::Snapshot`]).
async fn sessions(State(state): State<Arc<AppState>>) -> Response {
    let json = state.live.borrow().json.clone();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json.to_string()).into_response()
}

/// `GET /api/events`: server-sent events; `sessions` carries a
/// [`crate::live::Snapshot`] at once and again on each change.
async fn events(State(state): State<Arc<AppState>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Each snapshot is serialized once, when published, not per page.
    let stream = WatchStream::new(state.live.clone())
        .map(|snapshot| Ok(Event::default().event("sessions").data(&*snapshot.json)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}
