//! The new-session form, tasks and the conflict matrix: their pages and
//! their JSON (docs/web.md).
//!
//! - `GET /api/repos`: `[{id, root, name}]`, the repositories tandem
//!   knows whose main worktree is there (only `tandem serve --here`'s).
//! - `POST /api/sessions` `{repo, name?, title?, agent?, base?, prompt?,
//!   sandbox?}`: `tandem new --bg` in `repo` (a folder of the
//!   repository), with the server's environment; answers
//!   `{session: <list --json row>, notes}`.
//! - `GET /api/tasks?repo=ROOT`: `{repos: [{id, root, name, tasks: [<task
//!   list --json entry>]}]}` (every repository without `repo`).
//! - `GET /api/tasks/{repo_id}/{task}?no_check=1`: `tandem task show
//!   --json` (without `no_check` the check runs where it has no result).
//! - `GET /api/tasks/{repo_id}/{task}/diff?a=1&b=2`: the diff from trial
//!   `a` to trial `b` ([`TrialDiff`]), the patch cut at 2 MiB.
//! - `POST /api/tasks/{repo_id}/{task}/promote` `{trial}`: `tandem task
//!   promote`.
//! - `GET /api/conflicts?repo=ROOT`: `tandem conflicts --json`.
//!
//! Errors are `{"error": "…"}` with the CLI's words; the status follows
//! the error's kind (bad input 400, unknown 404, refused by the current
//! state 409).
//!
//! [`TrialDiff`]: tandem_core::tasks::report::TrialDiff

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tandem_core::client::{ClientError, Created, TaskPromoted};
use tandem_core::model::error::{ErrorKind, Kinded};
use tandem_core::protocol::CreateRequest;
use tandem_core::rows::columns;

use crate::api::error::ApiError;
use crate::assets;
use crate::state::AppState;

/// The most bytes of a trial-vs-trial patch sent.
pub const PATCH_LIMIT: usize = 2 * 1024 * 1024;

/// The pages and API routes of this module (added to the guarded router).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/new", get(|| async { assets::page("new.html") }))
        .route("/tasks", get(|| async { assets::page("tasks.html") }))
        .route("/tasks/{repo_id}/{task}", get(|| async { assets::page("task.html") }))
        .route("/conflicts", get(|| async { assets::page("conflicts.html") }))
        .route("/api/repos", get(repos))
        .route("/api/sessions", post(new_session))
        .route("/api/tasks", get(tasks))
        .route("/api/tasks/{repo_id}/{task}", get(task))
        .route("/api/tasks/{repo_id}/{task}/diff", get(task_diff))
        .route("/api/tasks/{repo_id}/{task}/promote", post(promote))
        .route("/api/conflicts", get(conflicts))
}

/// A client error as an answer: its words, and a status from its kind
/// (`not_found` is 404 unless the request named no resource by URL, as
/// a bad `--agent` or `--base` in a form: then 400).
fn client_error(e: &ClientError, not_found: StatusCode) -> ApiError {
    let status = match e.kind() {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => not_found,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal | ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError { status, message: e.to_string(), extra: None }
}

/// Runs `f` on tokio's blocking pool (every call to the supervisor, the
/// store or git blocks).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("the request's worker failed: {e}"),
        extra: None,
    })?
}

/// A body that is not the JSON asked for: 400 `{error}` naming what to
/// send; 413 when it is larger than the body limit (2 MiB).
fn bad_body(e: &JsonRejection, example: &str) -> Response {
    let mut error = ApiError::bad(format!("{}; send JSON like {example}", e.body_text()));
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        error.status = StatusCode::PAYLOAD_TOO_LARGE;
    }
    error.into_response()
}

fn answer<T: serde::Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A repository as the pages name it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Repo {
    /// The store's id: what `/tasks/{repo_id}/…` URLs name.
    pub id: i64,
    /// Its main worktree.
    pub root: String,
    /// Its folder's name.
    pub name: String,
}

/// The repositories shown: every one the store knows whose main worktree
/// is there, or only `tandem serve --here`'s.
fn known_repos(state: &AppState) -> Result<Vec<Repo>, ApiError> {
    let store = state.tandem.store().map_err(|e| client_error(&e, StatusCode::NOT_FOUND))?;
    let repos = store.repos().map_err(|e| client_error(&ClientError::Store(e), StatusCode::NOT_FOUND))?;
    Ok(repos
        .into_iter()
        .filter(|(_, _, root)| root.is_dir())
        .filter(|(_, _, root)| state.options.repo.as_ref().is_none_or(|only| only == root))
        .map(|(id, _, root)| Repo {
            id,
            name: root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            root: root.display().to_string(),
        })
        .collect())
}

/// The main worktree of the repository the store calls `id`.
fn repo_by_id(state: &AppState, id: i64) -> Result<PathBuf, ApiError> {
    known_repos(state)?
        .into_iter()
        .find(|r| r.id == id)
        .map(|r| PathBuf::from(r.root))
        .ok_or_else(|| ApiError::not_found(format!("no repository with id {id}; /api/repos lists them")))
}

/// The folder `?repo=` names, or `tandem serve --here`'s repository.
fn repo_param(state: &AppState, repo: Option<String>) -> Result<PathBuf, ApiError> {
    match (repo.filter(|r| !r.trim().is_empty()), &state.options.repo) {
        (Some(r), _) => {
            let path = PathBuf::from(r);
            if !path.is_absolute() || !path.is_dir() {
                return Err(ApiError::bad(format!(
                    "{} is not a folder; pass a repository's main worktree (GET /api/repos lists them)",
                    path.display()
                )));
            }
            Ok(path)
        }
        (None, Some(only)) => Ok(only.clone()),
        (None, None) => Err(ApiError::bad("name the repository: ?repo=ROOT (GET /api/repos lists them)")),
    }
}

/// `GET /api/repos`.
async fn repos(State(state): State<Arc<AppState>>) -> Response {
    answer(blocking(move || known_repos(&state)).await)
}

/// The body of `POST /api/sessions`: what the new-session form sends.
/// Empty strings count as not given.
#[derive(Debug, Deserialize)]
pub struct NewSession {
    /// A folder of the repository (its main worktree).
    pub repo: String,
    pub name: Option<String>,
    pub title: Option<String>,
    /// `claude`, `codex`, `gemini`, `shell` or a command line.
    pub agent: Option<String>,
    /// `fresh`, `head` or a commit-ish.
    pub base: Option<String>,
    pub prompt: Option<String>,
    /// `none`, `workspace` or `container`.
    pub sandbox: Option<String>,
}

fn given(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// `POST /api/sessions`: `tandem new --bg`.
async fn new_session(State(state): State<Arc<AppState>>, body: Result<Json<NewSession>, JsonRejection>) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(e) => return bad_body(&e, "{\"repo\": \"/path/to/repo\", \"agent\": \"claude\", …}"),
    };
    answer(
        blocking(move || {
            let root = repo_param(&state, Some(body.repo))?;
            let name = given(body.name);
            // Cheap checks first, as `tandem new` does: bad input never
            // reaches the supervisor.
            if let Some(name) = &name {
                tandem_core::session::slugs::validate(name).map_err(|e| ApiError::bad(e.to_string()))?;
            }
            let (env, _) = tandem_core::session::env::process_env();
            let request = CreateRequest {
                name,
                title: given(body.title),
                agent: given(body.agent),
                // A prompt keeps its own spacing.
                prompt: body.prompt.filter(|p| !p.trim().is_empty()),
                base: given(body.base),
                sandbox: given(body.sandbox),
                ..CreateRequest::new(root.clone(), env)
            };
            let Created { session, notes } =
                state.tandem.create(request).map_err(|e| client_error(&e, StatusCode::BAD_REQUEST))?;
            let quiet = state.options.quiet_secs;
            let listing =
                state.tandem.rows(&root, false, quiet, true).map_err(|e| client_error(&e, StatusCode::NOT_FOUND))?;
            let row = listing.rows.iter().find(|r| r.id == session.id);
            let row = row.map(|r| serde_json::to_value(&columns::json(std::slice::from_ref(r), listing.now)[0]));
            let row = row.transpose().map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(serde_json::json!({ "session": row, "id": session.id, "name": session.slug, "notes": notes }))
        })
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct RepoQuery {
    repo: Option<String>,
}

/// `GET /api/tasks?repo=ROOT`.
async fn tasks(State(state): State<Arc<AppState>>, Query(query): Query<RepoQuery>) -> Response {
    answer(
        blocking(move || {
            let mut repos = known_repos(&state)?;
            if let Some(root) = given(query.repo) {
                let root = std::fs::canonicalize(&root).unwrap_or_else(|_| PathBuf::from(&root));
                repos.retain(|r| std::fs::canonicalize(&r.root).is_ok_and(|r| r == root));
                if repos.is_empty() {
                    return Err(ApiError::not_found(format!(
                        "tandem knows no repository at {}; GET /api/repos lists them",
                        root.display()
                    )));
                }
            }
            let mut out = Vec::new();
            for repo in repos {
                let tasks = state
                    .tandem
                    .task_list(std::path::Path::new(&repo.root))
                    .map_err(|e| client_error(&e, StatusCode::NOT_FOUND))?;
                out.push(serde_json::json!({ "id": repo.id, "root": repo.root, "name": repo.name, "tasks": tasks }));
            }
            Ok(serde_json::json!({ "repos": out }))
        })
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    no_check: Option<String>,
}

/// `GET /api/tasks/{repo_id}/{task}`: `tandem task show --json`.
async fn task(
    State(state): State<Arc<AppState>>,
    Path((repo_id, name)): Path<(i64, String)>,
    Query(query): Query<ShowQuery>,
) -> Response {
    let run_checks = query.no_check.is_none_or(|v| v == "0");
    answer(
        blocking(move || {
            let root = repo_by_id(&state, repo_id)?;
            let (env, _) = tandem_core::session::env::process_env();
            state
                .tandem
                .task_show(&root, &name, run_checks, &env, &mut |_, _| {})
                .map_err(|e| client_error(&e, StatusCode::NOT_FOUND))
        })
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    a: Option<String>,
    b: Option<String>,
}

/// `GET /api/tasks/{repo_id}/{task}/diff?a=&b=`.
async fn task_diff(
    State(state): State<Arc<AppState>>,
    Path((repo_id, name)): Path<(i64, String)>,
    Query(query): Query<DiffQuery>,
) -> Response {
    answer(
        blocking(move || {
            let (Some(a), Some(b)) = (given(query.a), given(query.b)) else {
                return Err(ApiError::bad("name the two trials: ?a=1&b=2 (numbers or session names)"));
            };
            let root = repo_by_id(&state, repo_id)?;
            state
                .tandem
                .task_diff(&root, &name, &a, &b, PATCH_LIMIT)
                .map_err(|e| client_error(&e, StatusCode::NOT_FOUND))
        })
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct PromoteBody {
    trial: serde_json::Value,
}

/// `POST /api/tasks/{repo_id}/{task}/promote {trial}`: `tandem task
/// promote`; answers the promoted trial, its branch and the trials
/// archived. When archiving one failed, `ok` is false and `error` says
/// why (the promotion itself stands).
async fn promote(
    State(state): State<Arc<AppState>>,
    Path((repo_id, name)): Path<(i64, String)>,
    body: Result<Json<PromoteBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(e) => return bad_body(&e, "{\"trial\": 2}"),
    };
    answer(
        blocking(move || {
            let trial = match body.trial {
                serde_json::Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return Err(ApiError::bad("name the trial: {\"trial\": 2} (its number or session name)")),
            };
            let root = repo_by_id(&state, repo_id)?;
            let (env, _) = tandem_core::session::env::process_env();
            let TaskPromoted { task, winner, archived, failed } = state
                .tandem
                .task_promote(&root, &name, &trial, env)
                .map_err(|e| client_error(&e, StatusCode::NOT_FOUND))?;
            let notes: Vec<&String> = archived.iter().flat_map(|o| &o.notes).collect();
            let archived: Vec<&str> = archived.iter().map(|o| o.session.slug.as_str()).collect();
            Ok(serde_json::json!({
                "ok": failed.is_none(),
                "task": task,
                "promoted": winner.slug,
                "id": winner.id,
                "branch": winner.branch,
                "archived": archived,
                "notes": notes,
                "error": failed,
            }))
        })
        .await,
    )
}

/// `GET /api/conflicts?repo=ROOT`: `tandem conflicts --json`.
async fn conflicts(State(state): State<Arc<AppState>>, Query(query): Query<RepoQuery>) -> Response {
    answer(
        blocking(move || {
            let root = repo_param(&state, query.repo)?;
            state.tandem.conflicts(&root, false).map_err(|e| client_error(&e, StatusCode::NOT_FOUND))
        })
        .await,
    )
}
