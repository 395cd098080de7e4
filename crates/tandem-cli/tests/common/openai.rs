//! A scripted, offline stand-in for the OpenAI Responses API that the real
//! Codex CLI can talk to (a `CODEX_HOME/config.toml` whose model provider
//! points at `http://127.0.0.1:PORT/v1`; see [`write_codex_config`]).
//!
//! Only `std` and `serde_json` are used; the HTTP plumbing is [`super::http`].
//!
//! How replies are chosen:
//! * A `POST /v1/responses` request is part of the *main conversation* when
//!   it offers a shell tool (`exec_command`, `shell_command`, `shell`, or the
//!   code-mode `exec`, in `tools` or in an `additional_tools` item of
//!   `input`, which code-mode models use). It is answered with step
//!   `i`, where `i` is the number of our earlier outputs already in the
//!   request's `input` history: assistant `message`s, `function_call`s and
//!   `custom_tool_call`s. This is stateless, so retries get the same answer,
//!   a follow-up prompt in the same thread gets the next step, and a resumed
//!   thread (whose history Codex re-sends) continues the script. Past the end
//!   of the script the reply is the text `"Done."`.
//! * Any other `/v1/responses` request gets the short text [`SIDE_REPLY`],
//!   or, when it asks for structured output (`text.format.type ==
//!   "json_schema"`), a minimal JSON object fitting the schema. The
//!   interactive TUI sends one such request per new thread (a title,
//!   `{"title": string}`); `codex exec` and `codex app-server` sent none.
//! * `GET /v1/models` gets an empty list (Codex then uses its bundled model
//!   catalogue); `HEAD` gets an empty `200`; anything else `404 {}`. All of
//!   these are recorded in [`ResponsesStub::other_requests`].
//!
//! Streaming requests (`"stream": true`, which is all Codex sends) are
//! answered with server-sent events: `response.created`,
//! `response.output_item.added`, `response.output_text.delta` (messages
//! only), `response.output_item.done`, `response.completed` with usage.
//!
//! Tool calls are shaped after the tools the request offers (checked against
//! Codex CLI 0.169.0 with [`MODEL`]): a shell command becomes a
//! `function_call` of `exec_command` with `{"cmd": "<command>"}` (or of
//! `shell_command` / `shell` when those are offered instead), and a patch
//! becomes a `custom_tool_call` of the freeform `apply_patch` tool whose
//! `input` is the patch text (or a `function_call` with `{"input": patch}`
//! when `apply_patch` is a function tool). Codex runs the call and sends the
//! result back in the next request as a `function_call_output` /
//! `custom_tool_call_output` item ([`ResponsesStub::function_call_outputs`]).

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::{self, Request, Server, respond};

use serde_json::{Value, json};

/// Text answered to `/v1/responses` requests outside the main conversation.
pub const SIDE_REPLY: &str = "Stub reply";

/// The model [`write_codex_config`] selects. Codex 0.169's default model
/// (`gpt-6.1-sol`) is a "code mode only" model: its only tool is a
/// JavaScript `exec` tool that calls the real tools from inside a V8
/// isolate. `gpt-5.5` is the bundled model that still offers the plain
/// `exec_command` function and the freeform `apply_patch` tool.
pub const MODEL: &str = "gpt-5.5";

/// The environment variable whose value Codex sends as the bearer token
/// (`env_key` of the `fake` provider).
pub const API_KEY_VAR: &str = "TANDEM_TEST_OPENAI_KEY";

/// The value [`codex_env`] gives [`API_KEY_VAR`].
pub const API_KEY: &str = "sk-tandem-test-0123456789";

/// One scripted reply of the main conversation.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answer with an assistant message holding this text (ends the turn).
    Text(String),
    /// Call the shell tool with this command line (run by `bash -lc` or
    /// the user's shell; `&&`, quotes and redirections work).
    Shell {
        /// The command line.
        command: String,
        /// Asks to run outside Codex's sandbox (`exec_command`'s
        /// `sandbox_permissions: "require_escalated"`): under the default
        /// `approval_policy = "on-request"` Codex asks the user first.
        escalated: bool,
    },
    /// Call `apply_patch` with this patch (`*** Begin Patch` ...
    /// `*** End Patch`); see [`Step::add_file`].
    Patch(String),
}

impl Step {
    /// Shorthand for [`Step::Text`].
    pub fn text(text: impl Into<String>) -> Step {
        Step::Text(text.into())
    }

    /// Shorthand for [`Step::Shell`] with a command line.
    pub fn shell(command: impl Into<String>) -> Step {
        Step::Shell { command: command.into(), escalated: false }
    }

    /// [`Step::Shell`] asking to run outside the sandbox (and so asking
    /// the user under `on-request`).
    pub fn escalated(command: impl Into<String>) -> Step {
        Step::Shell { command: command.into(), escalated: true }
    }

    /// [`Step::Shell`] from an argument vector, each argument quoted for
    /// the shell.
    pub fn shell_argv(argv: &[&str]) -> Step {
        Step::Shell { command: argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "), escalated: false }
    }

    /// Shorthand for [`Step::Patch`].
    pub fn patch(patch: impl Into<String>) -> Step {
        Step::Patch(patch.into())
    }

    /// A [`Step::Patch`] that adds the file `path` (relative to the
    /// agent's working directory, or absolute) holding `contents`.
    pub fn add_file(path: &str, contents: &str) -> Step {
        let mut patch = format!("*** Begin Patch\n*** Add File: {path}\n");
        for line in contents.lines() {
            patch.push('+');
            patch.push_str(line);
            patch.push('\n');
        }
        patch.push_str("*** End Patch\n");
        Step::Patch(patch)
    }
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[derive(Default)]
struct State {
    /// Every JSON body received on `/v1/responses` (main and side requests).
    responses: Vec<Value>,
    /// `"METHOD /path"` of every request that was not `/v1/responses`.
    others: Vec<String>,
}

struct Shared {
    script: Vec<Step>,
    state: Mutex<State>,
    replies: AtomicUsize,
}

/// A running stub server; stops when dropped.
pub struct ResponsesStub {
    server: Server,
    shared: Arc<Shared>,
}

impl ResponsesStub {
    /// Starts an HTTP/1.1 server on `127.0.0.1:0` ([`Server`]).
    pub fn start(script: Vec<Step>) -> ResponsesStub {
        let shared = Arc::new(Shared { script, state: Mutex::new(State::default()), replies: AtomicUsize::new(0) });
        let handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |req: &Request, out: &mut TcpStream| handle(&shared, req, out))
        };
        ResponsesStub { server: Server::start(handler), shared }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `"http://127.0.0.1:PORT"` (without `/v1`; [`write_codex_config`]
    /// adds it).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every JSON body received on `/v1/responses`, in arrival order (main
    /// conversation and side requests alike).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.state.lock().unwrap().responses.clone()
    }

    /// The `/v1/responses` bodies that belong to the main conversation.
    pub fn main_requests(&self) -> Vec<Value> {
        self.requests().into_iter().filter(is_main).collect()
    }

    /// Every distinct output Codex sent back for our tool calls
    /// (`function_call_output` and `custom_tool_call_output` items of the
    /// main requests' `input`, deduplicated by `call_id`, in order of
    /// appearance). The text is in `output` (a string, or a list of
    /// `{type: "input_text", text}` parts; see [`output_text`]).
    pub fn function_call_outputs(&self) -> Vec<Value> {
        let mut seen = Vec::<String>::new();
        let mut out = Vec::new();
        for req in self.main_requests() {
            for item in req["input"].as_array().into_iter().flatten() {
                let kind = item["type"].as_str().unwrap_or_default();
                if kind != "function_call_output" && kind != "custom_tool_call_output" {
                    continue;
                }
                let id = item["call_id"].as_str().unwrap_or_default().to_string();
                if !seen.contains(&id) {
                    seen.push(id);
                    out.push(item.clone());
                }
            }
        }
        out
    }

    /// `"METHOD /path"` of every request that was not to `/v1/responses`.
    pub fn other_requests(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().others.clone()
    }

    /// Polls `pred` every 50 ms until it holds or `timeout` passes;
    /// returns whether it held.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&ResponsesStub) -> bool) -> bool {
        http::wait_until(timeout, || pred(self))
    }
}

/// The text of a `function_call_output` / `custom_tool_call_output` item:
/// its `output` string, or its text parts joined.
pub fn output_text(item: &Value) -> String {
    match &item["output"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        other => other.to_string(),
    }
}

/// Writes `codex_home/config.toml` so the Codex CLI talks to the stub at
/// `base_url` (`http://127.0.0.1:PORT`, with or without `/v1`) and runs
/// quietly offline: provider `fake` (`wire_api = "responses"`, bearer token
/// from [`API_KEY_VAR`]), model [`MODEL`], `trusted_dir` (and its canonical
/// form) trusted, no update check, analytics, feedback or OpenTelemetry
/// export. `[notice.model_migrations]` records the "Meet GPT-6 Sol" model
/// upgrade prompt as answered: without it the interactive TUI opens on that
/// prompt (and Enter switches to the code-mode model).
pub fn write_codex_config(codex_home: &Path, base_url: &str, trusted_dir: &Path) {
    std::fs::create_dir_all(codex_home).expect("create CODEX_HOME");
    let base = base_url.trim_end_matches('/');
    let base = if base.ends_with("/v1") { base.to_string() } else { format!("{base}/v1") };
    let mut dirs = vec![trusted_dir.to_path_buf()];
    if let Ok(canonical) = trusted_dir.canonicalize()
        && canonical != trusted_dir
    {
        dirs.push(canonical);
    }
    // Top-level keys must come before the first table.
    let mut text = format!(
        "model_provider = \"fake\"\n\
         model = \"{MODEL}\"\n\
         check_for_update_on_startup = false\n\
         \n\
         [model_providers.fake]\n\
         name = \"fake\"\n\
         base_url = {base:?}\n\
         wire_api = \"responses\"\n\
         env_key = \"{API_KEY_VAR}\"\n\
         request_max_retries = 0\n\
         stream_max_retries = 0\n\
         \n\
         [analytics]\n\
         enabled = false\n\
         \n\
         [feedback]\n\
         enabled = false\n\
         \n\
         [otel]\n\
         exporter = \"none\"\n\
         trace_exporter = \"none\"\n\
         metrics_exporter = \"none\"\n\
         \n\
         [notice]\n\
         hide_full_access_warning = true\n\
         \n\
         [notice.model_migrations]\n\
         \"{MODEL}\" = \"gpt-6-sol\"\n"
    );
    for dir in dirs {
        text.push_str(&format!("\n[projects.{:?}]\ntrust_level = \"trusted\"\n", dir.to_string_lossy()));
    }
    std::fs::write(codex_home.join("config.toml"), text).expect("write codex config.toml");
}

/// The environment for the `codex` process: `CODEX_HOME`, the API key
/// variable, and `TMPDIR` set to `codex_home/tmp-dir` (created here).
///
/// With a `CODEX_HOME` below the temp dir (`TMPDIR`, else `/tmp`) Codex
/// 0.169 prints "WARNING: proceeding, even though we could not create PATH
/// aliases: Refusing to create helper binaries under temporary dir" on
/// stderr, but nothing breaks: shell commands, `apply_patch` and the
/// `workspace-write` sandbox all still work. Pointing `TMPDIR` elsewhere
/// silences the warning, so a `CODEX_HOME` inside a test's `/tmp` folder is
/// fine. Callers should also remove `OPENAI_API_KEY`, `OPENAI_BASE_URL` and
/// `CODEX_*` variables from the inherited environment if they might be set.
pub fn codex_env(_stub: &ResponsesStub, codex_home: &Path) -> Vec<(String, String)> {
    let tmp = codex_home.join("tmp-dir");
    std::fs::create_dir_all(&tmp).expect("create TMPDIR for codex");
    let vars = [
        ("CODEX_HOME", codex_home.to_string_lossy().into_owned()),
        (API_KEY_VAR, API_KEY.to_string()),
        ("TMPDIR", tmp.to_string_lossy().into_owned()),
    ];
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

// ---------------------------------------------------------------------------
// Reply selection

/// Every tool a request offers: `(type, name)` of the `tools` array (and of
/// namespaces in it) and of `additional_tools` input items.
fn offered_tools(req: &Value) -> Vec<(String, String)> {
    fn walk(tools: &Value, out: &mut Vec<(String, String)>) {
        for tool in tools.as_array().into_iter().flatten() {
            let kind = tool["type"].as_str().unwrap_or_default().to_string();
            let name = tool["name"].as_str().unwrap_or_default().to_string();
            if kind == "namespace" {
                walk(&tool["tools"], out);
            } else {
                out.push((kind, name));
            }
        }
    }
    let mut out = Vec::new();
    walk(&req["tools"], &mut out);
    for item in req["input"].as_array().into_iter().flatten() {
        if item["type"] == "additional_tools" {
            walk(&item["tools"], &mut out);
        }
    }
    out
}

/// Tools whose presence marks a main-conversation request: the shell tools
/// and the code-mode `exec` tool.
const MAIN_TOOLS: [&str; 4] = ["exec_command", "shell_command", "shell", "exec"];

/// Main-conversation requests offer a shell tool. Side requests offer none
/// (the TUI's title request, for one, offers only `apply_patch` and asks for
/// `{"title": string}` as structured output).
fn is_main(req: &Value) -> bool {
    offered_tools(req).iter().any(|(_, name)| MAIN_TOOLS.contains(&name.as_str()))
}

/// How many of our outputs the request's history already holds.
fn step_index(req: &Value) -> usize {
    req["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| {
            (item["type"] == "message" && item["role"] == "assistant")
                || item["type"] == "function_call"
                || item["type"] == "custom_tool_call"
        })
        .count()
}

/// A tag that keeps call ids of different threads apart (the thread id
/// Codex sends as `prompt_cache_key`).
fn thread_tag(req: &Value) -> String {
    let key = req["prompt_cache_key"].as_str().unwrap_or("x");
    key.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().filter(char::is_ascii_alphanumeric).collect()
}

fn message_item(id: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

/// The one output item answering `req`.
fn reply_for(script: &[Step], req: &Value, n: usize) -> Value {
    let msg_id = format!("msg_stub_{n}");
    if super::is_one_shot(&req["input"].to_string()) {
        return message_item(&msg_id, super::ONE_SHOT_REPLY);
    }
    if !is_main(req) {
        let format = &req["text"]["format"];
        let text = if format["type"] == "json_schema" {
            fill_schema(&format["schema"]).to_string()
        } else {
            SIDE_REPLY.to_string()
        };
        return message_item(&msg_id, &text);
    }
    let tools = offered_tools(req);
    let has = |name: &str| tools.iter().find(|(_, n)| n == name).map(|(kind, _)| kind.clone());
    let step = step_index(req);
    let call_id = format!("call_stub_{step}_{}", thread_tag(req));
    match script.get(step) {
        Some(Step::Shell { command, escalated }) => {
            let (name, args) = if has("exec_command").is_some() && *escalated {
                let why = "The command needs to run outside the sandbox.";
                (
                    "exec_command",
                    json!({ "cmd": command, "sandbox_permissions": "require_escalated", "justification": why }),
                )
            } else if has("exec_command").is_some() {
                ("exec_command", json!({ "cmd": command }))
            } else if has("shell_command").is_some() {
                ("shell_command", json!({ "command": command }))
            } else if has("shell").is_some() {
                ("shell", json!({ "command": ["bash", "-lc", command] }))
            } else {
                ("exec_command", json!({ "cmd": command }))
            };
            json!({
                "type": "function_call",
                "id": format!("fc_stub_{n}"),
                "status": "completed",
                "call_id": call_id,
                "name": name,
                "arguments": args.to_string(),
            })
        }
        Some(Step::Patch(patch)) => {
            if has("apply_patch").as_deref() == Some("function") {
                json!({
                    "type": "function_call",
                    "id": format!("fc_stub_{n}"),
                    "status": "completed",
                    "call_id": call_id,
                    "name": "apply_patch",
                    "arguments": json!({ "input": patch }).to_string(),
                })
            } else {
                json!({
                    "type": "custom_tool_call",
                    "id": format!("ctc_stub_{n}"),
                    "status": "completed",
                    "call_id": call_id,
                    "name": "apply_patch",
                    "input": patch,
                })
            }
        }
        Some(Step::Text(text)) => message_item(&msg_id, text),
        None => message_item(&msg_id, "Done."),
    }
}

/// A minimal value satisfying a JSON schema (required properties only).
fn fill_schema(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str().unwrap_or("object") {
        "object" => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                out.insert(name.to_string(), fill_schema(&schema["properties"][name]));
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "boolean" => json!(false),
        "integer" | "number" => json!(0),
        "null" => Value::Null,
        _ => json!(SIDE_REPLY),
    }
}

fn usage() -> Value {
    json!({
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    })
}

fn response_json(req: &Value, id: &str, status: &str, output: &[Value]) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": 0,
        "status": status,
        "model": req["model"].as_str().unwrap_or(MODEL),
        "output": output,
        "usage": if status == "completed" { usage() } else { Value::Null },
    })
}

fn sse_body(req: &Value, id: &str, item: &Value) -> String {
    let mut out = String::new();
    let mut seq = 0;
    let mut event = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(seq);
        seq += 1;
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    event("response.created", json!({ "response": response_json(req, id, "in_progress", &[]) }));
    event("response.in_progress", json!({ "response": response_json(req, id, "in_progress", &[]) }));
    let item_id = item["id"].clone();
    let mut head = item.clone();
    head["status"] = json!("in_progress");
    match item["type"].as_str() {
        Some("message") => {
            let text = item["content"][0]["text"].clone();
            head["content"] = json!([]);
            event("response.output_item.added", json!({ "output_index": 0, "item": head }));
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            event(
                "response.content_part.added",
                json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "part": part }),
            );
            event(
                "response.output_text.delta",
                json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "delta": text }),
            );
            event(
                "response.output_text.done",
                json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "text": text }),
            );
            event(
                "response.content_part.done",
                json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "part": item["content"][0] }),
            );
        }
        Some("function_call") => {
            head["arguments"] = json!("");
            event("response.output_item.added", json!({ "output_index": 0, "item": head }));
            event(
                "response.function_call_arguments.delta",
                json!({ "item_id": item_id, "output_index": 0, "delta": item["arguments"] }),
            );
            event(
                "response.function_call_arguments.done",
                json!({ "item_id": item_id, "output_index": 0, "arguments": item["arguments"] }),
            );
        }
        _ => {
            head["input"] = json!("");
            event("response.output_item.added", json!({ "output_index": 0, "item": head }));
            event(
                "response.custom_tool_call_input.delta",
                json!({ "item_id": item_id, "output_index": 0, "delta": item["input"] }),
            );
        }
    }
    event("response.output_item.done", json!({ "output_index": 0, "item": item }));
    event("response.completed", json!({ "response": response_json(req, id, "completed", std::slice::from_ref(item)) }));
    out
}

fn handle(shared: &Shared, req: &Request, writer: &mut TcpStream) -> std::io::Result<()> {
    let body = req.json();
    match (req.method.as_str(), req.route()) {
        ("POST", "/v1/responses") => {
            shared.state.lock().unwrap().responses.push(body.clone());
            let n = shared.replies.fetch_add(1, Ordering::SeqCst);
            let id = format!("resp_stub_{n}");
            let item = reply_for(&shared.script, &body, n);
            if body["stream"] == false {
                let resp = response_json(&body, &id, "completed", std::slice::from_ref(&item));
                respond(writer, "200 OK", "application/json", resp.to_string().as_bytes())
            } else {
                let sse = sse_body(&body, &id, &item);
                respond(writer, "200 OK", "text/event-stream", sse.as_bytes())
            }
        }
        ("GET", "/v1/models") => {
            shared.state.lock().unwrap().others.push(format!("{} {}", req.method, req.path));
            // OpenAI's list shape plus the `models` key Codex's own
            // catalogue endpoint uses; both empty.
            let list = json!({"object": "list", "data": [], "models": []});
            respond(writer, "200 OK", "application/json", list.to_string().as_bytes())
        }
        ("HEAD", _) => {
            shared.state.lock().unwrap().others.push(format!("{} {}", req.method, req.path));
            writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
        }
        _ => {
            shared.state.lock().unwrap().others.push(format!("{} {}", req.method, req.path));
            respond(writer, "404 Not Found", "application/json", b"{}")
        }
    }
}
