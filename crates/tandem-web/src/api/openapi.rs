//! `GET /api/openapi.json`: the HTTP API as an OpenAPI 3.1 document,
//! built from [`ROUTES`] (the list kept beside the router: a route added
//! there is documented, and a test checks the router's routes are all in
//! it) and from [`tandem_core::rows::columns::COLUMNS`] (the row schema
//! lists every key of `tandem list --json`, so it cannot drift).

use serde_json::{Map, Value, json};
use tandem_core::rows::columns::COLUMNS;

/// One documented route.
pub struct Route {
    /// `get`, `post`.
    pub method: &'static str,
    /// As axum writes it: `/api/sessions/{id}`.
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// The 200 answer's schema (`#/components/schemas/…` name), or `None`
    /// for a page (HTML), an asset or a stream.
    pub answer: Option<&'static str>,
    /// The request body's schema name, for a POST that takes one.
    pub body: Option<&'static str>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    answer: Option<&'static str>,
    body: Option<&'static str>,
) -> Route {
    Route { method, path, summary, answer, body }
}

/// Every route of the server (docs/web.md, the contract between the
/// pages and the API).
pub const ROUTES: &[Route] = &[
    route("get", "/", "The dashboard page (HTML)", None, None),
    route("get", "/session/{id}", "A session's page (HTML)", None, None),
    route("get", "/new", "The new-session form (HTML)", None, None),
    route("get", "/tasks", "The tasks page (HTML)", None, None),
    route("get", "/tasks/{repo_id}/{task}", "A task's page (HTML)", None, None),
    route("get", "/conflicts", "The conflict matrix page (HTML)", None, None),
    route("get", "/assets/{name}", "An embedded file (script, style sheet)", None, None),
    route(
        "get",
        "/assets/vendor/{name}",
        "A vendored third-party file (xterm.js, highlight.js) or its license",
        None,
        None,
    ),
    route("get", "/api/openapi.json", "This document", None, None),
    route("get", "/api/sessions", "Every session's row, by repository", Some("Snapshot"), None),
    route(
        "get",
        "/api/events",
        "Server-sent events: `sessions` carries a Snapshot at once and on each change",
        None,
        None,
    ),
    route("post", "/api/sessions", "Start a new session", Some("SessionAnswer"), Some("NewSession")),
    route("get", "/api/sessions/{id}", "One session's row", Some("SessionAnswer"), None),
    route(
        "get",
        "/api/sessions/{id}/history",
        "A session's history events (`tandem history --json`)",
        Some("History"),
        None,
    ),
    route(
        "get",
        "/api/sessions/{id}/diff",
        "A session's diff report with its patch (`tandem diff --json`)",
        Some("DiffReport"),
        None,
    ),
    route(
        "get",
        "/api/sessions/{id}/terminal",
        "WebSocket: the bytes `tandem attach` gets; read-only until the client sends {\"type\":\"control\"}",
        None,
        None,
    ),
    route(
        "get",
        "/api/sessions/{id}/checkpoints",
        "A session's checkpoints, newest first (`tandem checkpoints --json`)",
        Some("Checkpoints"),
        None,
    ),
    route(
        "get",
        "/api/sessions/{id}/checkpoints/{n}/diff",
        "What checkpoint n's turn changed, or from n to `?to=M` (`tandem diff --checkpoint N --json`, with its patch)",
        Some("DiffReport"),
        None,
    ),
    route(
        "post",
        "/api/sessions/{id}/rewind",
        "Rewind the worktree to a checkpoint, or undo the last rewind (`tandem rewind --json`)",
        Some("RewindDone"),
        Some("Rewind"),
    ),
    route("post", "/api/sessions/{id}/send", "Send a prompt", Some("ActionAnswer"), Some("Send")),
    route("post", "/api/sessions/{id}/approve", "Approve what the agent asks", Some("ActionAnswer"), Some("Answer")),
    route("post", "/api/sessions/{id}/deny", "Deny what the agent asks", Some("ActionAnswer"), Some("Answer")),
    route("post", "/api/sessions/{id}/interrupt", "Interrupt the agent's turn", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/stop", "Stop the agent", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/respawn", "Start the agent again", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/fork", "Fork the session", Some("ActionAnswer"), Some("Fork")),
    route("post", "/api/sessions/{id}/review", "Start a review session", Some("ActionAnswer"), Some("Review")),
    route("post", "/api/sessions/{id}/sync", "Bring the base's changes in", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/merge", "Merge the branch into the base", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/pr", "Open or update the pull request", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/push", "Push the branch to its remote", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/archive", "Archive the session", Some("ActionAnswer"), None),
    route("post", "/api/sessions/{id}/restore", "Restore an archived session", Some("ActionAnswer"), None),
    route(
        "post",
        "/api/sessions/{id}/remove",
        "Remove the session; 409 with `unsaved` when it would lose work and `force` is false",
        Some("ActionAnswer"),
        Some("Remove"),
    ),
    route("get", "/api/repos", "The repositories tandem knows", Some("Repos"), None),
    route("get", "/api/tasks", "A repository's tasks (`?repo=ROOT`)", Some("Any"), None),
    route("get", "/api/tasks/{repo_id}/{task}", "One task and its trials", Some("Any"), None),
    route("post", "/api/tasks/{repo_id}/{task}/promote", "Promote a trial", Some("Any"), Some("Promote")),
    route("get", "/api/tasks/{repo_id}/{task}/diff", "The diff between two trials (`?a=1&b=2`)", Some("Any"), None),
    route("get", "/api/conflicts", "The conflict report (`tandem conflicts --json`, `?repo=ROOT`)", Some("Any"), None),
];

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn error_answer(what: &str) -> Value {
    json!({ "description": what, "content": { "application/json": { "schema": schema("Error") } } })
}

/// The row of `tandem list --json`: one property per
/// [`COLUMNS`] key, in its order.
#[must_use]
pub fn row_schema() -> Value {
    let properties: Map<String, Value> = COLUMNS
        .iter()
        .map(|c| {
            (c.key.to_owned(), json!({ "description": format!("`{}` of `tandem list --json` (docs/json.md)", c.key) }))
        })
        .collect();
    json!({
        "type": "object",
        "description": "A session's row, exactly as `tandem list --json` prints it (docs/json.md)",
        "properties": properties,
        "required": COLUMNS.iter().map(|c| c.key).collect::<Vec<_>>(),
    })
}

fn components() -> Value {
    let object = |props: Value| json!({ "type": "object", "properties": props });
    let text = json!({ "type": "string" });
    json!({
        "securitySchemes": {
            "cookie": {
                "type": "apiKey", "in": "cookie", "name": crate::auth::COOKIE,
                "description": "Set by opening the login URL `tandem serve` prints (`/?token=…`); HttpOnly, SameSite=Strict, Secure under TLS",
            },
            "bearer": {
                "type": "http", "scheme": "bearer",
                "description": "The per-user token (`<state>/web-token`), for scripts; a request without Origin is taken as no browser's",
            },
        },
        "schemas": {
            "Row": row_schema(),
            "Any": { "description": "The same JSON the matching `tandem … --json` command prints" },
            "Error": {
                "type": "object", "required": ["error"],
                "properties": { "error": { "type": "string", "description": "The same words the CLI prints" } },
            },
            "Snapshot": object(json!({
                "generation": { "type": "integer", "description": "The supervisor's change count" },
                "now": { "type": "integer", "description": "Unix seconds the rows were made at" },
                "error": { "type": ["string", "null"], "description": "Why the rows could not be made" },
                "repos": { "type": "array", "items": object(json!({
                    "root": text, "name": text,
                    "sessions": { "type": "array", "items": schema("Row") },
                    "notes": { "type": "array", "items": text },
                    "marks_stale": { "type": "boolean" },
                })) },
                "remote": object(json!({
                    "sessions": { "type": "array", "items": schema("Row"), "description": "Remote hosts' sessions, each with its `host`; last known ones `unreachable`" },
                    "notes": { "type": "array", "items": text },
                })),
            })),
            "SessionAnswer": object(json!({ "repo": text, "session": schema("Row") })),
            "ActionAnswer": object(json!({
                "ok": { "type": "boolean" },
                "notes": { "type": "array", "items": text },
                "session": { "oneOf": [schema("Row"), { "type": "null" }] },
                "unsaved": { "description": "On 409 from remove: what would be lost" },
            })),
            "HistoryEvent": {
                "type": "object",
                "description": "One event as `tandem history --json` prints it (docs/json.md)",
                "properties": {
                    "id": { "type": "integer" }, "at": { "type": "integer" }, "kind": text, "text": text, "data": {},
                },
            },
            "History": object(json!({
                "events": { "type": "array", "items": schema("HistoryEvent") },
                "last": { "type": ["integer", "null"], "description": "The last event's id: pass as `after` for the next page" },
            })),
            "DiffReport": {
                "type": "object",
                "description": "`tandem diff --json`'s report plus `patch` (the unified diff, at most 2 MiB)",
                "properties": { "files": { "type": "array", "items": {} }, "patch": text },
            },
            "Checkpoint": {
                "type": "object",
                "description": "One checkpoint as `tandem checkpoints --json` prints it (docs/json.md)",
                "properties": {
                    "n": { "type": "integer" }, "commit": text, "tree": text, "head": { "type": ["string", "null"] },
                    "index_tree": { "type": ["string", "null"] }, "at_ms": { "type": "integer" },
                    "cause": { "enum": ["turn", "sync", "merge", "restore", "rewind"] },
                    "rewound_to": { "type": ["integer", "null"] }, "prompt": { "type": ["string", "null"] },
                    "agent": text, "files": { "type": "integer" }, "added": { "type": "integer" },
                    "removed": { "type": "integer" }, "message_id": { "type": ["string", "null"] }, "ref": text,
                },
            },
            "Checkpoints": { "type": "array", "items": schema("Checkpoint") },
            "Rewind": {
                "type": "object",
                "description": "`checkpoint` or `undo: true`; `files` only with `checkpoint`",
                "properties": {
                    "checkpoint": { "type": "integer" }, "undo": { "type": "boolean" },
                    "files": { "type": "array", "items": text, "description": "Only these paths, relative to the worktree's top" },
                    "stop": { "type": "boolean", "description": "Stop an agent in the middle of a turn first (else 409)" },
                },
            },
            "RewindDone": object(json!({
                "before": schema("Checkpoint"), "to": schema("Checkpoint"),
                "written": { "type": "integer" }, "deleted": { "type": "integer" },
                "head_moved": { "type": ["array", "null"] }, "index_restored": { "type": "boolean" },
                "message": { "type": "string", "description": "The line the CLI prints" },
            })),
            "NewSession": object(json!({
                "repo": { "type": "string", "description": "The repository's main worktree" },
                "name": text, "agent": text, "base": text, "prompt": text, "sandbox": text,
            })),
            "Send": { "type": "object", "required": ["text"], "properties": { "text": text } },
            "Answer": object(json!({ "message": text })),
            "Fork": object(json!({ "name": text })),
            "Review": object(json!({ "agent": text })),
            "Remove": object(json!({ "force": { "type": "boolean" } })),
            "Promote": { "type": "object", "required": ["trial"], "properties": { "trial": { "type": "integer" } } },
            "Repos": { "type": "array", "items": object(json!({ "id": text, "root": text, "name": text })) },
        },
    })
}

fn operation(route: &Route) -> Value {
    let mut responses = Map::new();
    let ok = match route.answer {
        Some(name) => json!({ "description": "OK", "content": { "application/json": { "schema": schema(name) } } }),
        None => json!({ "description": "OK" }),
    };
    responses.insert("200".into(), ok);
    responses.insert(
        "401".into(),
        json!({ "description": "No valid token (cookie or bearer)", "content": { "text/plain": {} } }),
    );
    responses.insert(
        "403".into(),
        json!({ "description": "Host is not this server's, or a state-changing request's Origin is not", "content": { "text/plain": {} } }),
    );
    if route.path.contains("{id}") {
        responses.insert("404".into(), error_answer("No such session"));
    }
    if route.path.starts_with("/api/") && route.method == "post" {
        responses.insert("400".into(), error_answer("Bad input"));
        responses.insert("409".into(), error_answer("Refused: the session's state does not allow it"));
    }
    let parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    let mut op = json!({ "summary": route.summary, "responses": responses });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = route.body {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema(body) } } });
    }
    op
}

/// The whole document.
#[must_use]
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tandem",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON the dashboard's pages use (docs/web.md). Rows, history and diffs have the shapes of `tandem list --json`, `history --json` and `diff --json` (docs/json.md).",
        },
        "security": [{ "cookie": [] }, { "bearer": [] }],
        "paths": paths,
        "components": components(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_schema_has_every_list_json_key_and_no_other() {
        let doc = document();
        let props = doc["components"]["schemas"]["Row"]["properties"].as_object().expect("properties");
        let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
        let mut columns: Vec<&str> = COLUMNS.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys, columns);
    }

    /// Every `.route("…"` in the crate's source (the router and any file
    /// that adds routes to it) is in [`ROUTES`], so the document lists
    /// every route the server has.
    #[test]
    fn every_route_the_router_has_is_documented() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source");
                    for part in text.split(".route(\"").skip(1) {
                        let route = part.split('"').next().expect("a path");
                        if route.starts_with('/') {
                            found.push(route.to_owned());
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
        assert!(found.iter().any(|p| p == "/api/openapi.json"), "the walk finds the router's routes: {found:?}");
        for path in found {
            // One route serves every action; each is documented apart.
            let paths: Vec<String> = if path.contains("{action}") {
                crate::api::actions::ACTIONS.iter().map(|a| path.replace("{action}", a)).collect()
            } else {
                vec![path]
            };
            for path in paths {
                assert!(ROUTES.iter().any(|r| r.path == path), "route {path} is not in openapi::ROUTES");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().expect("a name");
            assert!(doc["components"]["schemas"].get(name).is_some(), "{name} is referenced but not defined");
        }
    }
}
