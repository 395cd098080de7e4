//! A scripted, offline stand-in for the Anthropic Messages API that the real
//! Claude Code CLI can talk to (`ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`).
//!
//! Only `std` and `serde_json` are used; the HTTP plumbing is [`super::http`].
//!
//! How replies are chosen:
//! * A request to `POST /v1/messages` is part of the *main conversation* when
//!   it has a non-empty `tools` array. It is answered with step `i`, where `i` is the
//!   number of `assistant` messages already in the request's history (i.e. how
//!   many replies of ours Claude has accepted so far). This is stateless, so
//!   retries get the same answer, and a second user prompt typed into the TUI
//!   after a `Text` step gets the next step. Past the end of the script the
//!   reply is the text `"Done."`.
//! * Any other `/v1/messages` request (session title, summaries, quota
//!   checks...) gets the short text [`SIDE_REPLY`], or, when it asks for
//!   structured output (`output_config.format.type == "json_schema"`, as the
//!   title request does), a minimal JSON object fitting the schema.
//! * `POST /v1/messages/count_tokens` gets `{"input_tokens": N}`.
//! * `HEAD` requests (Claude probes `HEAD /api/hello` unless nonessential
//!   traffic is disabled) get an empty `200`; anything else gets `404 {}`.
//!   Both, and `count_tokens`, are recorded in [`MessagesStub::other_requests`].
//!
//! Streaming requests (`"stream": true`) are answered with server-sent events,
//! others with a plain JSON message.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::{self, Request, Server, respond};

use serde_json::{Value, json};

/// Text answered to `/v1/messages` requests outside the main conversation.
pub const SIDE_REPLY: &str = "Stub title";

/// One scripted reply of the main conversation.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answer with this text and `stop_reason: end_turn`.
    Text(String),
    /// Answer with one `tool_use` block (id `toolu_stub_<i>`) and
    /// `stop_reason: tool_use`.
    ToolUse {
        /// Tool name as Claude Code knows it, e.g. `Write`, `Bash`.
        name: String,
        /// The tool's input object.
        input: Value,
    },
}

impl Step {
    /// Shorthand for [`Step::Text`].
    pub fn text(text: impl Into<String>) -> Step {
        Step::Text(text.into())
    }

    /// Shorthand for [`Step::ToolUse`].
    pub fn tool(name: impl Into<String>, input: Value) -> Step {
        Step::ToolUse { name: name.into(), input }
    }
}

#[derive(Default)]
struct State {
    /// Every JSON body received on `/v1/messages` (main and side requests).
    messages: Vec<Value>,
    /// `"METHOD /path"` of every request that was not `/v1/messages`.
    others: Vec<String>,
}

struct Shared {
    script: Vec<Step>,
    state: Mutex<State>,
    replies: AtomicUsize,
}

/// A running stub server; stops when dropped.
pub struct MessagesStub {
    server: Server,
    shared: Arc<Shared>,
}

impl MessagesStub {
    /// Starts an HTTP/1.1 server on `127.0.0.1:0` ([`Server`]).
    pub fn start(script: Vec<Step>) -> MessagesStub {
        let shared = Arc::new(Shared { script, state: Mutex::new(State::default()), replies: AtomicUsize::new(0) });
        let handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |req: &Request, out: &mut TcpStream| handle(&shared, req, out))
        };
        MessagesStub { server: Server::start(handler), shared }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `"http://127.0.0.1:PORT"`, the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every JSON body received on `/v1/messages`, in arrival order
    /// (main conversation and side requests alike).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.state.lock().unwrap().messages.clone()
    }

    /// The `/v1/messages` bodies that belong to the main conversation.
    pub fn main_requests(&self) -> Vec<Value> {
        self.requests().into_iter().filter(is_main).collect()
    }

    /// Every distinct `tool_result` block Claude sent back in the main
    /// conversation (deduplicated by `tool_use_id`, in order of appearance).
    pub fn tool_results(&self) -> Vec<Value> {
        let mut seen = Vec::<String>::new();
        let mut out = Vec::new();
        for req in self.main_requests() {
            for block in tool_result_blocks(&req) {
                let id = block["tool_use_id"].as_str().unwrap_or_default().to_string();
                if !seen.contains(&id) {
                    seen.push(id);
                    out.push(block.clone());
                }
            }
        }
        out
    }

    /// `"METHOD /path"` of every request that was not to `/v1/messages`
    /// (including `count_tokens`).
    pub fn other_requests(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().others.clone()
    }

    /// Polls `pred` every 50 ms until it holds or `timeout` passes;
    /// returns whether it held.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&MessagesStub) -> bool) -> bool {
        http::wait_until(timeout, || pred(self))
    }
}

/// Writes `.claude.json` and `settings.json` into `config_dir` (the
/// `CLAUDE_CONFIG_DIR`) so the CLI runs offline without any dialog:
/// onboarding done, the API key approved, `trusted_dir` trusted, and
/// `allowed_tools` (e.g. `["Write", "Bash"]`) allowed without prompting.
///
/// `trusted_dir` must be the git repository's root (or a folder between the
/// working directory and that root): Claude only walks up to the git root
/// looking for trust, so a parent folder *outside* the repository does not
/// count. Trusting a main repository also covers its `git worktree`s, wherever
/// they live. Claude rewrites both files as it runs (dropping keys it
/// considers default) but keeps what matters here, so one config dir can
/// serve several launches.
pub fn write_claude_config(config_dir: &Path, api_key: &str, trusted_dir: &Path, allowed_tools: &[&str]) {
    std::fs::create_dir_all(config_dir).expect("create CLAUDE_CONFIG_DIR");
    let key_suffix: String = {
        let chars: Vec<char> = api_key.chars().collect();
        chars[chars.len().saturating_sub(20)..].iter().collect()
    };
    let trusted = trusted_dir.canonicalize().unwrap_or_else(|_| trusted_dir.to_path_buf());
    let mut projects = serde_json::Map::new();
    for dir in [trusted_dir.to_path_buf(), trusted] {
        projects
            .insert(dir.to_string_lossy().into_owned(), json!({ "hasTrustDialogAccepted": true, "allowedTools": [] }));
    }
    // Every key below was checked against Claude Code 2.1.330 in a PTY:
    // - hasCompletedOnboarding: else the welcome / theme picker shows.
    // - customApiKeyResponses.approved: else "Detected a custom API key ...
    //   Do you want to use this API key?" (default answer: No).
    // - projects.<dir>.hasTrustDialogAccepted: else the folder trust dialog.
    // - hasSeenAutoDefaultNudge: else "Make auto mode your default permission
    //   mode?" appears after the first turn.
    // - bypassPermissionsModeAccepted: else `--dangerously-skip-permissions`
    //   shows a warning to accept (Claude migrates it to
    //   `skipDangerousModePermissionPrompt` in settings.json).
    let claude_json = json!({
        "hasCompletedOnboarding": true,
        "lastOnboardingVersion": "99.0.0",
        "numStartups": 1,
        "autoUpdates": false,
        "hasSeenAutoDefaultNudge": true,
        "bypassPermissionsModeAccepted": true,
        "customApiKeyResponses": { "approved": [key_suffix], "rejected": [] },
        "projects": projects,
    });
    // defaultMode "default": the out-of-the-box mode is "auto", whose safety
    // check runs server-side; through a custom base URL it is unavailable, so
    // every Bash call would stop at an approval dialog despite the allow rule.
    let settings = json!({
        "permissions": { "allow": allowed_tools, "defaultMode": "default" },
        "skipDangerousModePermissionPrompt": true,
        "autoUpdates": false,
    });
    let write = |name: &str, value: &Value| {
        let text = serde_json::to_string_pretty(value).expect("serialize config");
        std::fs::write(config_dir.join(name), text).expect("write claude config");
    };
    write(".claude.json", &claude_json);
    write("settings.json", &settings);
}

/// Points `env`'s commands at the stand-in `stub`: a Claude config dir
/// (`claude-config` in the test's temporary folder, returned) written by
/// [`write_claude_config`] trusting the repository and allowing
/// `allowed_tools` without asking, the API variables ([`claude_env`]), and
/// `claude`'s folder first on `PATH`.
pub fn use_claude(
    env: &mut super::TestEnv,
    claude: &Path,
    stub: &MessagesStub,
    allowed_tools: &[&str],
) -> std::path::PathBuf {
    let config_dir = env.tmp.path().join("claude-config");
    let api_key = "sk-ant-test-0123456789abcdefghijklmnop";
    write_claude_config(&config_dir, api_key, &env.repo, allowed_tools);
    env.env.extend(claude_env(stub, &config_dir, api_key));
    let claude_dir = claude.parent().expect("claude has a folder").to_string_lossy().into_owned();
    env.env.push(("PATH".to_owned(), format!("{claude_dir}:/usr/local/bin:/usr/bin:/bin")));
    config_dir
}

/// The environment for the `claude` process. Callers should also remove
/// `ANTHROPIC_AUTH_TOKEN`, `CLAUDE_CODE_OAUTH_TOKEN` and `CLAUDECODE` from the
/// inherited environment if they might be set.
pub fn claude_env(stub: &MessagesStub, config_dir: &Path, api_key: &str) -> Vec<(String, String)> {
    let vars = [
        ("ANTHROPIC_BASE_URL", stub.base_url()),
        ("ANTHROPIC_API_KEY", api_key.to_string()),
        ("CLAUDE_CONFIG_DIR", config_dir.to_string_lossy().into_owned()),
        ("DISABLE_AUTOUPDATER", "1".to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_string()),
        ("DISABLE_TELEMETRY", "1".to_string()),
        ("DISABLE_ERROR_REPORTING", "1".to_string()),
    ];
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

// ---------------------------------------------------------------------------
// Reply selection

/// Main-conversation requests carry the agent's tool list; side requests
/// (titles, summaries, quota checks) have none or `"tools": []`. Not every
/// tool is always listed (some are deferred behind `ToolSearch`), so no
/// particular name is required.
fn is_main(req: &Value) -> bool {
    req["tools"].as_array().is_some_and(|t| !t.is_empty())
}

fn tool_result_blocks(req: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for msg in req["messages"].as_array().into_iter().flatten() {
        for block in msg["content"].as_array().into_iter().flatten() {
            if block["type"] == "tool_result" {
                out.push(block);
            }
        }
    }
    out
}

/// Content blocks and stop reason for one `/v1/messages` request.
fn reply_for(script: &[Step], req: &Value) -> (Vec<Value>, &'static str) {
    if !is_main(req) {
        // Structured-output side requests (e.g. session titles ask for
        // `{"title": string}`) get JSON that fits their schema.
        let format = &req["output_config"]["format"];
        let text = if format["type"] == "json_schema" {
            fill_schema(&format["schema"]).to_string()
        } else {
            SIDE_REPLY.to_string()
        };
        return (vec![json!({"type": "text", "text": text})], "end_turn");
    }
    let step =
        req["messages"].as_array().map(|m| m.iter().filter(|msg| msg["role"] == "assistant").count()).unwrap_or(0);
    match script.get(step) {
        Some(Step::ToolUse { name, input }) => (
            vec![json!({
                "type": "tool_use",
                "id": format!("toolu_stub_{step}"),
                "name": name,
                "input": input,
            })],
            "tool_use",
        ),
        Some(Step::Text(text)) => (vec![json!({"type": "text", "text": text})], "end_turn"),
        None => (vec![json!({"type": "text", "text": "Done."})], "end_turn"),
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

fn message_json(req: &Value, content: &[Value], stop_reason: &str, id: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": req["model"].as_str().unwrap_or("claude-stub"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    })
}

fn sse_body(req: &Value, content: &[Value], stop_reason: &str, id: &str) -> String {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| {
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    let mut start = message_json(req, &[], stop_reason, id);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    event("message_start", json!({"type": "message_start", "message": start}));
    for (index, block) in content.iter().enumerate() {
        if block["type"] == "tool_use" {
            let mut head = block.clone();
            head["input"] = json!({});
            event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": head}));
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": block["input"].to_string()}}),
            );
        } else {
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
            );
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "text_delta", "text": block["text"]}}),
            );
        }
        event("content_block_stop", json!({"type": "content_block_stop", "index": index}));
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 5}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    out
}

fn handle(shared: &Shared, req: &Request, writer: &mut TcpStream) -> std::io::Result<()> {
    let body = req.json();
    match (req.method.as_str(), req.route()) {
        ("POST", "/v1/messages") => {
            shared.state.lock().unwrap().messages.push(body.clone());
            let n = shared.replies.fetch_add(1, Ordering::SeqCst);
            let id = format!("msg_stub_{n}");
            let (content, stop) = reply_for(&shared.script, &body);
            if body["stream"] == true {
                let sse = sse_body(&body, &content, stop, &id);
                respond(writer, "200 OK", "text/event-stream", sse.as_bytes())
            } else {
                let msg = message_json(&body, &content, stop, &id);
                respond(writer, "200 OK", "application/json", msg.to_string().as_bytes())
            }
        }
        ("POST", "/v1/messages/count_tokens") => {
            shared.state.lock().unwrap().others.push(format!("{} {}", req.method, req.path));
            let n = req.body.len() / 4 + 1;
            respond(writer, "200 OK", "application/json", json!({"input_tokens": n}).to_string().as_bytes())
        }
        ("HEAD", _) => {
            // e.g. the connectivity probe `HEAD /api/hello`.
            shared.state.lock().unwrap().others.push(format!("{} {}", req.method, req.path));
            writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
        }
        _ => {
            shared.state.lock().unwrap().others.push(format!("{} {}", req.method, req.path));
            respond(writer, "404 Not Found", "application/json", b"{}")
        }
    }
}
