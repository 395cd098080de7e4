//! Codex CLI driven through `codex app-server`: JSON-RPC over stdio, one
//! JSON object per line, without the `"jsonrpc"` field (see
//! `AGENT-PROTOCOLS.md`; `codex app-server generate-json-schema` gives
//! the exact types of an installed version).
//!
//! The conversation is a Codex *thread*: [`Driver::start`] sends
//! `initialize`, and on its answer `initialized` and `thread/start`
//! (`thread/resume` to resume, `thread/fork` to fork; if Codex cannot
//! resume or fork the thread, a new one starts and the screen says so).
//! The thread's id is recorded as the session's agent conversation.
//! Each prompt is a `turn/start`; Codex runs one turn at a time, so a
//! prompt sent during a turn waits in the driver until `turn/completed`.
//!
//! | Codex sends | history | activity |
//! |---|---|---|
//! | `turn/started` | | `running` |
//! | `item/completed` `agentMessage` | message | |
//! | `item/completed` `reasoning` | reasoning | |
//! | `item/started` / `item/completed` `commandExecution` | tool call, tool result (output, exit code) | |
//! | `item/completed` `fileChange` | a file change per path, with its diff | |
//! | `item/completed` `mcpToolCall`, `webSearch` | tool call | |
//! | request `item/commandExecution/requestApproval`, `item/fileChange/requestApproval` | permission | `needs-input` |
//! | `thread/tokenUsage/updated`, then `turn/completed` | usage | `idle` |
//!
//! Approvals are answered `accept` or `decline` ([`Driver::answer`]); a
//! decline's message follows as the next prompt. Codex's own request ids
//! start at 0 like tandem's: a message with a `method` is Codex's request.
//! A thread that never had a turn has no rollout and cannot be resumed
//! (Codex 0.169): it starts afresh. Codex's own
//! configuration decides when it asks (`approval_policy`, `sandbox_mode`
//! in its `config.toml`, or `-c` options on the agent's command line,
//! e.g. `--agent "codex -c approval_policy=never"`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Conversation;
use super::claude::cut;
use super::driver::{Driver, Incoming, Recorder, Reply, Rpc, rpc_error};
use crate::store::{Activity, EventKind, Store, StoreError};

/// The arguments after the program.
pub const ARGS: &[&str] = &["app-server"];

/// The arguments of a one-shot question (`codex exec`): read-only,
/// nothing saved; stdout carries only the last message.
pub const ONE_SHOT: &[&str] = &["exec", "--skip-git-repo-check", "--ephemeral", "--sandbox", "read-only"];

/// The options that make Codex refuse every write, for a review: it
/// fences itself.
pub const READ_ONLY: &str = "-c sandbox_mode=read-only";

/// The driver of a Codex agent working in `cwd`, opening `conversation`.
#[must_use]
pub fn driver(cwd: &Path, conversation: &Conversation) -> Box<dyn Driver> {
    Box::new(Codex::new(cwd, conversation))
}

/// What an answer of Codex's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Initialize,
    /// `thread/start`, `thread/resume` or `thread/fork`.
    Thread(Opening),
    Turn,
    Interrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    Start,
    Resume,
    Fork,
}

/// Codex's `app-server` protocol as a [`Driver`].
pub struct Codex {
    cwd: PathBuf,
    conversation: Conversation,
    rpc: Rpc<Asked>,
    thread: Option<String>,
    /// The running turn's id (`Some("")` between `turn/start` and its
    /// answer).
    turn: Option<String>,
    /// Prompts waiting for the running turn (or the thread) to be ready.
    queue: VecDeque<String>,
    /// The approval request Codex waits on: its JSON-RPC id.
    pending: Option<Value>,
    /// The last token usage Codex reported for the thread.
    usage: Value,
}

impl Codex {
    #[must_use]
    pub fn new(cwd: &Path, conversation: &Conversation) -> Codex {
        Codex {
            cwd: cwd.to_owned(),
            conversation: conversation.clone(),
            rpc: Rpc::new(false),
            thread: None,
            turn: None,
            queue: VecDeque::new(),
            pending: None,
            usage: Value::Null,
        }
    }

    fn open_thread(&mut self, opening: Opening) -> String {
        let cwd = self.cwd.to_string_lossy().into_owned();
        match (&self.conversation, opening) {
            (Conversation::Resume(id), Opening::Resume) => {
                let id = id.clone();
                self.rpc.request(Asked::Thread(opening), "thread/resume", json!({ "threadId": id, "cwd": cwd }))
            }
            (Conversation::Fork(id), Opening::Fork) => {
                let id = id.clone();
                self.rpc.request(Asked::Thread(opening), "thread/fork", json!({ "threadId": id, "cwd": cwd }))
            }
            _ => self.rpc.request(Asked::Thread(Opening::Start), "thread/start", json!({ "cwd": cwd })),
        }
    }

    /// `turn/start` for the next queued prompt, when the thread is open
    /// and no turn runs.
    fn next_turn(&mut self) -> Option<String> {
        if self.turn.is_some() {
            return None;
        }
        let thread = self.thread.clone()?;
        let text = self.queue.pop_front()?;
        self.turn = Some(String::new());
        Some(self.rpc.request(
            Asked::Turn,
            "turn/start",
            json!({ "threadId": thread, "input": [{ "type": "text", "text": text }] }),
        ))
    }

    fn answered(
        &mut self,
        rec: &mut Recorder,
        store: &Store,
        asked: Asked,
        msg: &Value,
        out: &mut Reply,
        shown: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let error = rpc_error(msg);
        match (asked, error) {
            (Asked::Initialize, _) => {
                out.write.push(self.rpc.notify("initialized", Value::Null));
                let opening = match self.conversation {
                    Conversation::Resume(_) => Opening::Resume,
                    Conversation::Fork(_) => Opening::Fork,
                    Conversation::Any | Conversation::New(_) => Opening::Start,
                };
                let open = self.open_thread(opening);
                out.write.push(open);
            }
            (Asked::Thread(opening), Some(why)) if opening != Opening::Start => {
                shown.push(format!("! cannot {} the earlier Codex thread ({why}); starting a new one", verb(opening)));
                let open = self.open_thread(Opening::Start);
                out.write.push(open);
            }
            (Asked::Thread(_), Some(why)) => shown.push(format!("! Codex cannot start a thread: {why}")),
            (Asked::Thread(opening), None) => {
                let id = msg["result"]["thread"]["id"].as_str().unwrap_or_default().to_owned();
                if !id.is_empty() {
                    store.set_agent_session(rec.session_id(), &id)?;
                }
                if opening == Opening::Resume {
                    shown.push(format!("(resumed Codex thread {id})"));
                }
                self.thread = Some(id);
                match self.next_turn() {
                    Some(turn) => {
                        out.write.push(turn);
                        rec.set_activity(store, Activity::Running, None)?;
                    }
                    None => rec.set_activity(store, Activity::Idle, None)?,
                }
            }
            (Asked::Turn, Some(why)) => {
                shown.push(format!("! Codex refused the prompt: {why}"));
                self.turn = None;
                if let Some(turn) = self.next_turn() {
                    out.write.push(turn);
                } else {
                    rec.set_activity(store, Activity::Idle, None)?;
                }
            }
            (Asked::Turn, None) => {
                if let Some(id) = msg["result"]["turn"]["id"].as_str()
                    && self.turn.as_deref() == Some("")
                {
                    self.turn = Some(id.to_owned());
                }
            }
            (Asked::Interrupt, _) => {}
        }
        Ok(())
    }

    fn notified(
        &mut self,
        rec: &mut Recorder,
        store: &Store,
        method: &str,
        params: &Value,
        out: &mut Reply,
        shown: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        match method {
            "turn/started" => {
                self.turn = params["turn"]["id"].as_str().map(str::to_owned).or(self.turn.take());
                rec.set_activity(store, Activity::Running, None)?;
            }
            "item/started" => {
                let item = &params["item"];
                if item["type"] == "commandExecution" {
                    let command = item["command"].as_str().unwrap_or_default();
                    shown.push(format!("⚙ Bash: {command}"));
                    rec.push(EventKind::ToolCall, format!("Bash: {}", cut(command)), json!({ "command": command }));
                }
            }
            "item/completed" => self.item_completed(rec, &params["item"], shown),
            "thread/tokenUsage/updated" => self.usage = params["tokenUsage"].clone(),
            "turn/completed" => {
                let turn = &params["turn"];
                let status = turn["status"].as_str().unwrap_or("completed");
                if let Some(message) = turn["error"]["message"].as_str() {
                    shown.push(format!("! {message}"));
                }
                let tokens = self.usage["total"]["totalTokens"].as_u64().unwrap_or_default();
                rec.push(
                    EventKind::Usage,
                    format!("turn {status} ({tokens} tokens in the thread)"),
                    json!({ "usage": self.usage, "status": status }),
                );
                self.turn = None;
                shown.push(String::new());
                match self.next_turn() {
                    Some(turn) => out.write.push(turn),
                    None => rec.turn_ended(store)?,
                }
            }
            "error" => {
                if let Some(message) = params["error"]["message"].as_str() {
                    shown.push(format!("! {message}"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn item_completed(&mut self, rec: &mut Recorder, item: &Value, shown: &mut Vec<String>) {
        match item["type"].as_str().unwrap_or_default() {
            "agentMessage" => {
                let text = cut(item["text"].as_str().unwrap_or_default());
                shown.push(format!("● {text}"));
                rec.push(EventKind::Message, text, json!({}));
            }
            "reasoning" => {
                let parts = item["summary"].as_array().into_iter().chain(item["content"].as_array()).flatten();
                let text: Vec<&str> = parts.filter_map(Value::as_str).collect();
                if !text.is_empty() {
                    rec.push(EventKind::Reasoning, cut(&text.join("\n")), json!({}));
                }
            }
            "commandExecution" => {
                let output = cut(item["aggregatedOutput"].as_str().unwrap_or_default());
                let code = item["exitCode"].as_i64();
                let first = output.lines().next().unwrap_or_default().to_owned();
                shown.push(match code {
                    Some(0) | None => format!("  ⎿ {first}"),
                    Some(code) => format!("  ⎿ (exit {code}) {first}"),
                });
                rec.push(
                    EventKind::ToolResult,
                    output,
                    json!({ "command": item["command"], "exit_code": code, "status": item["status"] }),
                );
            }
            "fileChange" => {
                for change in item["changes"].as_array().into_iter().flatten() {
                    let path = change["path"].as_str().unwrap_or_default();
                    let kind = change["kind"]["type"].as_str().unwrap_or("update");
                    shown.push(format!("  ✎ {kind} {path}"));
                    rec.push(
                        EventKind::FileChange,
                        format!("{kind} {path}"),
                        json!({ "path": path, "kind": kind, "diff": cut(change["diff"].as_str().unwrap_or_default()) }),
                    );
                }
            }
            "mcpToolCall" => {
                let tool =
                    format!("{}/{}", item["server"].as_str().unwrap_or("mcp"), item["tool"].as_str().unwrap_or(""));
                shown.push(format!("⚙ {tool}"));
                rec.push(EventKind::ToolCall, tool, item["arguments"].clone());
            }
            "webSearch" => {
                let query = item["query"].as_str().unwrap_or_default();
                shown.push(format!("⚙ WebSearch: {query}"));
                rec.push(EventKind::ToolCall, format!("WebSearch: {query}"), json!({ "query": query }));
            }
            _ => {}
        }
    }

    /// Handles a request of the agent's (`msg` has an `id` and a
    /// `method`).
    fn server_request(
        &mut self,
        rec: &mut Recorder,
        store: &Store,
        msg: &Value,
        out: &mut Reply,
        shown: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let (id, method, params) = (&msg["id"], msg["method"].as_str().unwrap_or_default(), &msg["params"]);
        let asking = match method {
            "item/commandExecution/requestApproval" | "execCommandApproval" => {
                let command = match &params["command"] {
                    Value::String(s) => s.clone(),
                    Value::Array(words) => words.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
                    _ => String::new(),
                };
                format!("Bash: {command}")
            }
            "item/fileChange/requestApproval" | "applyPatchApproval" => {
                format!("file changes{}", params["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default())
            }
            _ => {
                // Nothing tandem can answer: say so, so the turn goes on.
                out.write.push(self.rpc.refuse(id, method));
                return Ok(());
            }
        };
        shown.push(format!("? asks permission for {asking} (tandem approve / deny)"));
        rec.push(EventKind::Permission, format!("asks permission for {asking}"), params.clone());
        rec.set_activity(store, Activity::NeedsInput, Some(&asking))?;
        self.pending = Some(id.clone());
        Ok(())
    }
}

impl Driver for Codex {
    fn start(&mut self, first: Option<&str>) -> Vec<String> {
        self.queue.extend(first.map(str::to_owned));
        let init =
            json!({ "clientInfo": { "name": "tandem", "title": "tandem", "version": env!("CARGO_PKG_VERSION") } });
        vec![self.rpc.request(Asked::Initialize, "initialize", init)]
    }

    fn prompt(&mut self, text: &str) -> Vec<String> {
        self.queue.push_back(text.to_owned());
        self.next_turn().into_iter().collect()
    }

    fn answer(&mut self, allow: bool, message: Option<&str>) -> Option<Vec<String>> {
        let id = self.pending.take()?;
        let decision = if allow { "accept" } else { "decline" };
        let mut lines = vec![self.rpc.reply(&id, json!({ "decision": decision }))];
        if let Some(message) = message.filter(|_| !allow) {
            lines.extend(self.prompt(message));
        }
        Some(lines)
    }

    /// `turn/interrupt`; an approval still waiting is answered `cancel`
    /// instead, which ends the turn (`interrupted`) as well.
    fn interrupt(&mut self) -> Vec<String> {
        if let Some(id) = self.pending.take() {
            return vec![self.rpc.reply(&id, json!({ "decision": "cancel" }))];
        }
        match (self.thread.clone(), self.turn.clone().filter(|t| !t.is_empty())) {
            (Some(thread), Some(turn)) => {
                vec![self.rpc.request(
                    Asked::Interrupt,
                    "turn/interrupt",
                    json!({ "threadId": thread, "turnId": turn }),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn line(&mut self, rec: &mut Recorder, store: &Store, text: &str) -> Result<Reply, StoreError> {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return Ok(Reply::show(vec![text.to_owned()]));
        };
        let mut out = Reply::default();
        let mut shown = Vec::new();
        match self.rpc.incoming(&msg) {
            Incoming::Request { .. } => self.server_request(rec, store, &msg, &mut out, &mut shown)?,
            Incoming::Answer(asked) => self.answered(rec, store, asked, &msg, &mut out, &mut shown)?,
            Incoming::Notification { method, params } => {
                self.notified(rec, store, method, params, &mut out, &mut shown)?;
            }
            Incoming::Other => {}
        }
        out.shown = shown.join("\r\n");
        Ok(out)
    }
}

fn verb(opening: Opening) -> &'static str {
    match opening {
        Opening::Start => "start",
        Opening::Resume => "resume",
        Opening::Fork => "fork",
    }
}
