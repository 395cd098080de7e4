//! A scripted, offline stand-in for the Gemini API (`generativelanguage`
//! `v1beta`) that the real Gemini CLI can talk to
//! (`GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT`, see [`gemini_env`]).
//!
//! Only `std` and `serde_json` are used; the HTTP plumbing is [`super::http`].
//!
//! How replies are chosen:
//! * A request to `POST /v1beta/models/<model>:streamGenerateContent` or
//!   `:generateContent` is part of the *main conversation* when it declares
//!   tools (a non-empty `tools[].functionDeclarations`). It is answered with
//!   step `i`, where `i` is the number of `model` turns already in the
//!   request's `contents` (i.e. how many replies of ours Gemini has accepted
//!   so far). This is stateless, so retries get the same answer, a follow-up
//!   prompt after a `Text` step gets the next step, and a resumed session
//!   (whose history Gemini replays) continues the script. Past the end of the
//!   script the reply is the text `"Done."`.
//! * Any other model call (the model router's classification, the
//!   next-speaker check, titles, summaries...) gets the short text
//!   [`SIDE_REPLY`], or, when it asks for JSON
//!   (`generationConfig.responseJsonSchema` / `responseSchema`), a minimal
//!   JSON object fitting the schema. Numbers are answered with `1` (or the
//!   schema's `minimum`): the router's `complexity_score` must be 1..=100,
//!   and enums with their first value (the next-speaker check then says
//!   `"user"`, so the turn ends).
//! * `POST …:countTokens` gets `{"totalTokens": N}`.
//! * Anything else gets `404 {}`.
//!
//! Every request is recorded ([`GeminiStub::calls`]); the JSON bodies of the
//! model calls are kept ([`GeminiStub::requests`]).
//!
//! Streaming calls (`:streamGenerateContent?alt=sse`) are answered with
//! server-sent events (`data: <GenerateContentResponse>`), a text reply
//! split over two chunks; `:generateContent` with one JSON response.

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::{self, Request, Server, respond};

use serde_json::{Value, json};

/// Text answered to model calls outside the main conversation.
pub const SIDE_REPLY: &str = "Stub";

/// The API key [`gemini_env`] hands to the CLI.
pub const API_KEY: &str = "stub-gemini-key";

/// The git identity [`gemini_env`] sets (the same as the test home's
/// `.gitconfig`, which Gemini's shell tool does not read).
pub const GIT_NAME: &str = "Test";
/// See [`GIT_NAME`].
pub const GIT_EMAIL: &str = "test@example.com";

/// One scripted reply of the main conversation.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answer with this text and `finishReason: STOP`.
    Text(String),
    /// Answer with one `functionCall` part and `finishReason: STOP`.
    Tool {
        /// Tool name as Gemini CLI declares it, e.g. `run_shell_command`
        /// (args `{command, description?, dir_path?}`) or `write_file`
        /// (args `{file_path, content}`), `read_file {file_path}`,
        /// `replace {file_path, instruction, old_string, new_string}`.
        name: String,
        /// The call's arguments object.
        args: Value,
    },
}

impl Step {
    /// Shorthand for [`Step::Text`].
    pub fn text(text: impl Into<String>) -> Step {
        Step::Text(text.into())
    }

    /// Shorthand for [`Step::Tool`].
    pub fn tool(name: impl Into<String>, args: Value) -> Step {
        Step::Tool { name: name.into(), args }
    }

    /// Shorthand for a `run_shell_command` call.
    pub fn shell(command: impl Into<String>) -> Step {
        Step::tool("run_shell_command", json!({ "command": command.into() }))
    }

    /// Shorthand for a `write_file` call (`file_path` relative to the
    /// workspace or absolute).
    pub fn write_file(file_path: impl Into<String>, content: impl Into<String>) -> Step {
        Step::tool("write_file", json!({ "file_path": file_path.into(), "content": content.into() }))
    }
}

#[derive(Default)]
struct State {
    /// Every JSON body received on `/v1beta/models/…` (all methods).
    bodies: Vec<Value>,
    /// `"METHOD /path?query"` of every request, in arrival order.
    calls: Vec<String>,
}

struct Shared {
    script: Vec<Step>,
    state: Mutex<State>,
    replies: AtomicUsize,
}

/// A running stub server; stops when dropped.
pub struct GeminiStub {
    server: Server,
    shared: Arc<Shared>,
}

impl GeminiStub {
    /// Starts an HTTP/1.1 server on `127.0.0.1:0` ([`Server`]).
    pub fn start(script: Vec<Step>) -> GeminiStub {
        let shared = Arc::new(Shared { script, state: Mutex::new(State::default()), replies: AtomicUsize::new(0) });
        let handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |req: &Request, out: &mut TcpStream| handle(&shared, req, out))
        };
        GeminiStub { server: Server::start(handler), shared }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `"http://127.0.0.1:PORT"`, the value for `GOOGLE_GEMINI_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every JSON body received on `/v1beta/models/…` (`streamGenerateContent`,
    /// `generateContent`, `countTokens`), in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.state.lock().unwrap().bodies.clone()
    }

    /// The bodies that belong to the main conversation (those declaring tools).
    pub fn main_requests(&self) -> Vec<Value> {
        self.requests().into_iter().filter(is_main).collect()
    }

    /// `"METHOD /path?query"` of every request received, in arrival order,
    /// e.g. `"POST /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"`.
    pub fn calls(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().calls.clone()
    }

    /// Every distinct `functionResponse` part Gemini sent back in the main
    /// conversation (`{id?, name, response: {output | error …}}`), in order of
    /// appearance, deduplicated (by `id`, else by the whole part).
    pub fn function_responses(&self) -> Vec<Value> {
        let mut seen = Vec::<Value>::new();
        let mut out = Vec::new();
        for req in self.main_requests() {
            for part in parts(&req).filter_map(|p| p.get("functionResponse")) {
                let key = match part.get("id") {
                    Some(id) if !id.is_null() => id.clone(),
                    _ => part.clone(),
                };
                if !seen.contains(&key) {
                    seen.push(key);
                    out.push(part.clone());
                }
            }
        }
        out
    }

    /// The text of every [`GeminiStub::function_responses`] entry, joined by
    /// newlines (`response.output`, else the whole `response` as JSON).
    pub fn function_output(&self) -> String {
        self.function_responses()
            .iter()
            .map(|r| match r["response"]["output"].as_str() {
                Some(s) => s.to_string(),
                None => r["response"].to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls `pred` every 50 ms until it holds or `timeout` passes;
    /// returns whether it held.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&GeminiStub) -> bool) -> bool {
        http::wait_until(timeout, || pred(self))
    }
}

/// Writes `<gemini_cli_home>/.gemini/settings.json` (the `GEMINI_CLI_HOME`)
/// so the CLI runs offline and quietly: API-key auth (else "Invalid auth
/// method selected."), no update check or auto-update, no usage statistics
/// or telemetry, no IDE integration or its nudge, no banner or tips.
pub fn write_gemini_settings(gemini_cli_home: &Path) {
    let dir = gemini_cli_home.join(".gemini");
    std::fs::create_dir_all(&dir).expect("create GEMINI_CLI_HOME/.gemini");
    let settings = json!({
        "security": { "auth": { "selectedType": "gemini-api-key" } },
        "general": { "enableAutoUpdate": false, "enableAutoUpdateNotification": false },
        "privacy": { "usageStatisticsEnabled": false },
        "telemetry": { "enabled": false },
        "ide": { "enabled": false, "hasSeenNudge": true },
        "ui": { "hideBanner": true, "hideTips": true },
    });
    let text = serde_json::to_string_pretty(&settings).expect("serialize settings");
    std::fs::write(dir.join("settings.json"), text).expect("write gemini settings");
}

/// The environment for the `gemini` process; `gemini_cli_home` is the
/// folder given to [`write_gemini_settings`]. Callers should also remove
/// `GOOGLE_API_KEY`, `GOOGLE_GENAI_USE_VERTEXAI`, `GOOGLE_CLOUD_PROJECT` and
/// `GOOGLE_APPLICATION_CREDENTIALS` from the inherited environment if they
/// might be set.
///
/// `GEMINI_CLI_TRUST_WORKSPACE=true`: without it an untrusted folder silently
/// drops `--yolo` to the default approval mode.
///
/// The git identity variables are there because Gemini runs
/// `run_shell_command` with `GIT_CONFIG_GLOBAL=/dev/null` and
/// `GIT_CONFIG_SYSTEM=/dev/null` (plus `core.hooksPath=""` and a few more
/// overrides through `GIT_CONFIG_KEY_<n>`): the identity in `~/.gitconfig` is
/// not seen there, so a `git commit` would fail with "Author identity
/// unknown". Repository-level config and the environment still count.
pub fn gemini_env(stub: &GeminiStub, gemini_cli_home: &Path) -> Vec<(String, String)> {
    let vars = [
        ("GOOGLE_GEMINI_BASE_URL", stub.base_url()),
        ("GEMINI_API_KEY", API_KEY.to_string()),
        ("GEMINI_CLI_TRUST_WORKSPACE", "true".to_string()),
        ("GEMINI_CLI_HOME", gemini_cli_home.to_string_lossy().into_owned()),
        ("GEMINI_TELEMETRY_ENABLED", "false".to_string()),
        ("NO_BROWSER", "true".to_string()),
        ("GIT_AUTHOR_NAME", GIT_NAME.to_string()),
        ("GIT_AUTHOR_EMAIL", GIT_EMAIL.to_string()),
        ("GIT_COMMITTER_NAME", GIT_NAME.to_string()),
        ("GIT_COMMITTER_EMAIL", GIT_EMAIL.to_string()),
    ];
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

// ---------------------------------------------------------------------------
// Reply selection

/// Main-conversation requests declare the agent's tools; side calls (router,
/// next-speaker check, summaries) declare none.
fn is_main(req: &Value) -> bool {
    req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["functionDeclarations"].as_array().is_some_and(|f| !f.is_empty()))
}

/// Every part of every entry of the request's `contents`.
fn parts(req: &Value) -> impl Iterator<Item = &Value> {
    req["contents"].as_array().into_iter().flatten().flat_map(|c| c["parts"].as_array().into_iter().flatten())
}

/// The `parts` of our reply to one model call.
fn reply_parts(script: &[Step], req: &Value) -> Vec<Value> {
    if super::is_one_shot(&req["contents"].to_string()) {
        return vec![json!({ "text": super::ONE_SHOT_REPLY })];
    }
    if !is_main(req) {
        let config = &req["generationConfig"];
        let schema = [&config["responseJsonSchema"], &config["responseSchema"]].into_iter().find(|s| s.is_object());
        let text = match schema {
            Some(schema) => fill_schema(schema).to_string(),
            None => SIDE_REPLY.to_string(),
        };
        return vec![json!({ "text": text })];
    }
    let step = req["contents"].as_array().map(|c| c.iter().filter(|m| m["role"] == "model").count()).unwrap_or(0);
    match script.get(step) {
        Some(Step::Tool { name, args }) => vec![json!({ "functionCall": { "name": name, "args": args } })],
        Some(Step::Text(text)) => vec![json!({ "text": text })],
        None => vec![json!({ "text": "Done." })],
    }
}

/// A schema's type, lower-cased (Gemini sends both `"OBJECT"` and
/// `"object"`; a list of types counts as its first).
fn schema_type(schema: &Value) -> String {
    let ty = match &schema["type"] {
        Value::Array(list) => list.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    ty.as_str().unwrap_or("object").to_ascii_lowercase()
}

/// A minimal value satisfying a JSON schema (required properties only).
fn fill_schema(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema_type(schema).as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                out.insert(name.to_string(), fill_schema(&schema["properties"][name]));
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "boolean" => json!(false),
        "integer" | "number" => schema.get("minimum").filter(|m| m.is_number()).cloned().unwrap_or(json!(1)),
        "null" => Value::Null,
        _ => json!(SIDE_REPLY),
    }
}

fn usage() -> Value {
    json!({ "promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15 })
}

/// One `GenerateContentResponse`.
fn response_json(parts: Vec<Value>, finish: bool, id: &str) -> Value {
    let mut candidate = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
    let mut out = json!({ "modelVersion": "gemini-stub", "responseId": id });
    if finish {
        candidate["finishReason"] = json!("STOP");
        out["usageMetadata"] = usage();
    }
    out["candidates"] = json!([candidate]);
    out
}

/// The SSE body for a streaming call: a text reply in two chunks (so
/// clients see deltas), a function call in one; the last chunk carries
/// `finishReason` and `usageMetadata`.
fn sse_body(parts: Vec<Value>, id: &str) -> String {
    let mut chunks = Vec::new();
    if let [part] = parts.as_slice()
        && let Some(text) = part["text"].as_str()
        && text.chars().count() > 1
    {
        let mid = text.char_indices().nth(text.chars().count() / 2).map(|(i, _)| i).unwrap_or(0);
        chunks.push(response_json(vec![json!({ "text": &text[..mid] })], false, id));
        chunks.push(response_json(vec![json!({ "text": &text[mid..] })], true, id));
    } else {
        chunks.push(response_json(parts, true, id));
    }
    chunks.iter().map(|c| format!("data: {c}\r\n\r\n")).collect()
}

fn handle(shared: &Shared, req: &Request, writer: &mut TcpStream) -> std::io::Result<()> {
    let body = req.json();
    let route = req.route().to_string();
    {
        let mut state = shared.state.lock().unwrap();
        state.calls.push(format!("{} {}", req.method, req.path));
        if route.starts_with("/v1beta/models/") {
            state.bodies.push(body.clone());
        }
    }
    let method = route.rsplit_once(':').map(|(_, m)| m).unwrap_or_default();
    if req.method != "POST" || !route.starts_with("/v1beta/models/") {
        return respond(writer, "404 Not Found", "application/json", b"{}");
    }
    match method {
        "streamGenerateContent" | "generateContent" => {
            let n = shared.replies.fetch_add(1, Ordering::SeqCst);
            let id = format!("resp_stub_{n}");
            let parts = reply_parts(&shared.script, &body);
            if method == "streamGenerateContent" {
                respond(writer, "200 OK", "text/event-stream", sse_body(parts, &id).as_bytes())
            } else {
                let reply = response_json(parts, true, &id);
                respond(writer, "200 OK", "application/json", reply.to_string().as_bytes())
            }
        }
        "countTokens" => {
            let n = req.body.len() / 4 + 1;
            respond(writer, "200 OK", "application/json", json!({ "totalTokens": n }).to_string().as_bytes())
        }
        _ => respond(writer, "404 Not Found", "application/json", b"{}"),
    }
}
