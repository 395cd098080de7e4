//! Gemini CLI driven through `gemini --acp`: the Agent Client Protocol,
//! JSON-RPC 2.0 over stdio, one JSON object per line (see
//! `AGENT-PROTOCOLS.md` and <https://agentclientprotocol.com>).
//!
//! [`Driver::start`] sends `initialize`, and on its answer `session/new`
//! (`session/load` to resume; if Gemini cannot load the session a new
//! one starts and the screen says so). ACP has no fork: a fork starts a
//! new conversation and says so. The session id is recorded as the
//! session's agent conversation. Each prompt is a `session/prompt`
//! request whose answer (`stopReason`) ends the turn; Gemini runs one at
//! a time, so a prompt sent during a turn waits in the driver.
//!
//! | Gemini sends | history | activity |
//! |---|---|---|
//! | `session/update` `agent_message_chunk` (joined per message) | message | `running` |
//! | `session/update` `agent_thought_chunk` (joined) | reasoning | |
//! | `session/update` `tool_call` | tool call | |
//! | `session/update` `tool_call_update` (completed / failed) | tool result; a file change per diff | |
//! | request `session/request_permission` | permission | `needs-input` |
//! | the answer to `session/prompt` | usage | `idle` |
//!
//! The updates Gemini replays while it loads a session are shown, not
//! recorded again. tandem offers no file system or terminal to the agent
//! (`clientCapabilities` all false): Gemini uses its own tools. ACP does
//! not carry a shell command's output (Gemini 0.61 sends an empty
//! `content`), so a command's result event has only its status.
//!
//! Gemini's request ids start at 0 like tandem's own: a message with a
//! `method` is Gemini's request, one without is an answer to tandem.
//! A prompt sent during a turn would abort it, hence the queue.
//!
//! Gemini runs its shell commands with `GIT_CONFIG_GLOBAL=/dev/null`, so
//! the user's `~/.gitconfig` identity is not seen and a `git commit`
//! fails; [`git_identity`] hands the identity over in the environment.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Conversation;
use super::claude::cut;
use super::driver::{Driver, Incoming, Recorder, Reply, Rpc, rpc_error};
use crate::store::{Activity, EventKind, Store, StoreError};

/// The arguments after the program.
pub const ARGS: &[&str] = &["--acp"];

/// The arguments of a one-shot question (`gemini -p`), in plan mode
/// (read-only).
pub const ONE_SHOT: &[&str] = &["--approval-mode", "plan", "-p"];

/// The driver of a Gemini agent working in `cwd`, opening `conversation`.
#[must_use]
pub fn driver(cwd: &Path, conversation: &Conversation) -> Box<dyn Driver> {
    Box::new(Gemini::new(cwd, conversation))
}

/// The ACP version tandem speaks.
const PROTOCOL_VERSION: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Initialize,
    New,
    Load,
    Prompt,
}

/// Text arriving in chunks, recorded as one event when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunks {
    Message,
    Thought,
}

/// Gemini's ACP as a [`Driver`].
pub struct Gemini {
    cwd: PathBuf,
    conversation: Conversation,
    rpc: Rpc<Asked>,
    session: Option<String>,
    /// Whether a `session/prompt` is unanswered.
    turn: bool,
    /// Whether Gemini may be replaying a loaded session's history: from
    /// `session/load` until tandem sends the next prompt (the replay
    /// arrives mostly after the load's answer).
    loading: bool,
    queue: VecDeque<String>,
    /// The permission request Gemini waits on: its id and options.
    pending: Option<(Value, Vec<Value>)>,
    /// Text gathered from chunks, and what kind.
    text: Option<(Chunks, String)>,
    /// Tool calls seen, by id: their titles.
    tools: HashMap<String, String>,
}

impl Gemini {
    #[must_use]
    pub fn new(cwd: &Path, conversation: &Conversation) -> Gemini {
        Gemini {
            cwd: cwd.to_owned(),
            conversation: conversation.clone(),
            rpc: Rpc::new(true),
            session: None,
            turn: false,
            loading: false,
            queue: VecDeque::new(),
            pending: None,
            text: None,
            tools: HashMap::new(),
        }
    }

    fn new_session(&mut self) -> String {
        let cwd = self.cwd.to_string_lossy().into_owned();
        self.rpc.request(Asked::New, "session/new", json!({ "cwd": cwd, "mcpServers": [] }))
    }

    /// `session/prompt` for the next queued prompt, when the session is
    /// open and no turn runs.
    fn next_turn(&mut self) -> Option<String> {
        if self.turn || self.rpc.waiting(|a| *a == Asked::Load) {
            return None;
        }
        let session = self.session.clone()?;
        let text = self.queue.pop_front()?;
        self.turn = true;
        self.loading = false;
        self.text = None;
        Some(self.rpc.request(
            Asked::Prompt,
            "session/prompt",
            json!({ "sessionId": session, "prompt": [{ "type": "text", "text": text }] }),
        ))
    }

    /// Records the text gathered from chunks, if any.
    fn end_text(&mut self, rec: &mut Recorder) {
        let Some((kind, text)) = self.text.take() else { return };
        if self.loading || text.trim().is_empty() {
            return;
        }
        let kind = match kind {
            Chunks::Message => EventKind::Message,
            Chunks::Thought => EventKind::Reasoning,
        };
        rec.push(kind, cut(text.trim()), json!({}));
    }

    /// Adds a chunk; returns the text to show when a new message starts.
    fn chunk(&mut self, rec: &mut Recorder, kind: Chunks, text: &str) -> Option<String> {
        if let Some((current, gathered)) = &mut self.text
            && *current == kind
        {
            gathered.push_str(text);
            return None;
        }
        self.end_text(rec);
        self.text = Some((kind, text.to_owned()));
        None
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
                let can_load = msg["result"]["agentCapabilities"]["loadSession"] == true;
                let open = match &self.conversation {
                    Conversation::Resume(id) if can_load => {
                        let (id, cwd) = (id.clone(), self.cwd.to_string_lossy().into_owned());
                        self.loading = true;
                        self.session = Some(id.clone());
                        self.rpc.request(
                            Asked::Load,
                            "session/load",
                            json!({ "sessionId": id, "cwd": cwd, "mcpServers": [] }),
                        )
                    }
                    Conversation::Fork(_) => {
                        shown.push("(Gemini cannot fork a conversation: this one starts afresh)".to_owned());
                        self.new_session()
                    }
                    _ => self.new_session(),
                };
                out.write.push(open);
            }
            (Asked::Load, Some(why)) => {
                self.loading = false;
                self.session = None;
                shown.push(format!("! cannot resume the earlier Gemini session ({why}); starting a new one"));
                let open = self.new_session();
                out.write.push(open);
            }
            (Asked::New, Some(why)) => shown.push(format!("! Gemini cannot start a session: {why}")),
            (Asked::New | Asked::Load, None) => {
                if asked == Asked::Load {
                    shown.push(format!("(resumed Gemini session {})", self.session.as_deref().unwrap_or_default()));
                } else {
                    self.session = msg["result"]["sessionId"].as_str().map(str::to_owned);
                }
                if let Some(id) = &self.session {
                    store.set_agent_session(rec.session_id(), id)?;
                }
                match self.next_turn() {
                    Some(turn) => {
                        out.write.push(turn);
                        rec.set_activity(store, Activity::Running, None)?;
                    }
                    None => rec.set_activity(store, Activity::Idle, None)?,
                }
            }
            (Asked::Prompt, error) => {
                self.end_text(rec);
                let reason = msg["result"]["stopReason"].as_str().unwrap_or("error").to_owned();
                if let Some(why) = &error {
                    shown.push(format!("! {why}"));
                }
                let usage = &msg["result"]["_meta"];
                rec.push(
                    EventKind::Usage,
                    format!("turn {}", error.as_deref().map_or(reason.as_str(), |_| "failed")),
                    json!({ "stop_reason": reason, "meta": usage }),
                );
                self.turn = false;
                shown.push(String::new());
                match self.next_turn() {
                    Some(turn) => out.write.push(turn),
                    None => rec.turn_ended(store)?,
                }
            }
        }
        Ok(())
    }

    fn updated(
        &mut self,
        rec: &mut Recorder,
        store: &Store,
        update: &Value,
        shown: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let kind = update["sessionUpdate"].as_str().unwrap_or_default();
        match kind {
            "agent_message_chunk" | "agent_thought_chunk" => {
                let text = update["content"]["text"].as_str().unwrap_or_default();
                let chunks = if kind == "agent_message_chunk" { Chunks::Message } else { Chunks::Thought };
                self.chunk(rec, chunks, text);
                if chunks == Chunks::Message {
                    // Shown whole when it ends; running from the first chunk.
                    if !self.loading {
                        rec.set_activity(store, Activity::Running, None)?;
                    }
                }
                return Ok(());
            }
            _ => self.flush_text(shown, rec),
        }
        match kind {
            "tool_call" => {
                let id = update["toolCallId"].as_str().unwrap_or_default().to_owned();
                let title = update["title"].as_str().unwrap_or("tool").to_owned();
                shown.push(format!("⚙ {title}"));
                if !self.loading {
                    rec.push(EventKind::ToolCall, cut(&title), json!({ "kind": update["kind"], "input": update["rawInput"], "locations": update["locations"] }));
                    rec.set_activity(store, Activity::Running, None)?;
                }
                self.tools.insert(id, title);
            }
            "tool_call_update" => {
                let status = update["status"].as_str().unwrap_or_default();
                if !matches!(status, "completed" | "failed") {
                    return Ok(());
                }
                let mut text = Vec::new();
                for content in update["content"].as_array().into_iter().flatten() {
                    match content["type"].as_str().unwrap_or_default() {
                        "content" => text.extend(content["content"]["text"].as_str().map(str::to_owned)),
                        "diff" => {
                            let path = content["path"].as_str().unwrap_or_default();
                            let kind = if content["oldText"].is_null() { "add" } else { "update" };
                            shown.push(format!("  ✎ {kind} {path}"));
                            if !self.loading {
                                rec.push(
                                    EventKind::FileChange,
                                    format!("{kind} {path}"),
                                    json!({ "path": path, "kind": kind, "old": cut(content["oldText"].as_str().unwrap_or_default()), "new": cut(content["newText"].as_str().unwrap_or_default()) }),
                                );
                            }
                        }
                        _ => {}
                    }
                }
                let text = cut(&text.join("\n"));
                let id = update["toolCallId"].as_str().unwrap_or_default();
                let first = text.lines().next().unwrap_or_default();
                shown.push(if status == "failed" {
                    format!("  ⎿ (failed) {first}")
                } else {
                    format!("  ⎿ {first}")
                });
                if !self.loading {
                    let title = self.tools.get(id).cloned().unwrap_or_default();
                    rec.push(
                        EventKind::ToolResult,
                        text,
                        json!({ "tool": title, "status": status, "output": update["rawOutput"] }),
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends chunked text and shows it.
    fn flush_text(&mut self, shown: &mut Vec<String>, rec: &mut Recorder) {
        if let Some((Chunks::Message, text)) = &self.text
            && !text.trim().is_empty()
        {
            shown.push(format!("● {}", text.trim()));
        }
        self.end_text(rec);
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
        if method != "session/request_permission" {
            out.write.push(self.rpc.refuse(id, method));
            return Ok(());
        }
        self.flush_text(shown, rec);
        let call = &params["toolCall"];
        let asking = call["title"].as_str().unwrap_or("a tool").to_owned();
        shown.push(format!("? asks permission for {asking} (tandem approve / deny)"));
        rec.push(EventKind::Permission, format!("asks permission for {asking}"), params.clone());
        rec.set_activity(store, Activity::NeedsInput, Some(&asking))?;
        self.pending = Some((id.clone(), params["options"].as_array().cloned().unwrap_or_default()));
        Ok(())
    }
}

impl Driver for Gemini {
    fn start(&mut self, first: Option<&str>) -> Vec<String> {
        self.queue.extend(first.map(str::to_owned));
        let init = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "clientCapabilities": { "fs": { "readTextFile": false, "writeTextFile": false }, "terminal": false },
        });
        vec![self.rpc.request(Asked::Initialize, "initialize", init)]
    }

    fn prompt(&mut self, text: &str) -> Vec<String> {
        self.queue.push_back(text.to_owned());
        self.next_turn().into_iter().collect()
    }

    fn answer(&mut self, allow: bool, message: Option<&str>) -> Option<Vec<String>> {
        let (id, options) = self.pending.take()?;
        let wanted = if allow { ["allow_once", "allow_always"] } else { ["reject_once", "reject_always"] };
        let option = wanted
            .iter()
            .find_map(|kind| options.iter().find(|o| o["kind"] == *kind))
            .and_then(|o| o["optionId"].as_str());
        let outcome = match option {
            Some(option) => json!({ "outcome": "selected", "optionId": option }),
            None => json!({ "outcome": "cancelled" }),
        };
        let mut lines = vec![self.rpc.reply(&id, json!({ "outcome": outcome }))];
        if let Some(message) = message.filter(|_| !allow) {
            lines.extend(self.prompt(message));
        }
        Some(lines)
    }

    /// `session/cancel`; a permission request still waiting is answered
    /// `cancelled` first, or the turn would not end.
    fn interrupt(&mut self) -> Vec<String> {
        let Some(session) = self.session.clone().filter(|_| self.turn) else { return Vec::new() };
        let mut lines = Vec::new();
        if let Some((id, _)) = self.pending.take() {
            lines.push(self.rpc.reply(&id, json!({ "outcome": { "outcome": "cancelled" } })));
        }
        lines.push(self.rpc.notify("session/cancel", json!({ "sessionId": session })));
        lines
    }

    fn line(&mut self, rec: &mut Recorder, store: &Store, text: &str) -> Result<Reply, StoreError> {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return Ok(Reply::show(vec![text.to_owned()]));
        };
        let mut out = Reply::default();
        let mut shown = Vec::new();
        match self.rpc.incoming(&msg) {
            Incoming::Request { .. } => self.server_request(rec, store, &msg, &mut out, &mut shown)?,
            Incoming::Answer(asked) => {
                if asked == Asked::Prompt {
                    self.flush_text(&mut shown, rec);
                }
                self.answered(rec, store, asked, &msg, &mut out, &mut shown)?;
            }
            Incoming::Notification { method: "session/update", params } => {
                self.updated(rec, store, &params["update"], &mut shown)?;
            }
            Incoming::Notification { .. } | Incoming::Other => {}
        }
        out.shown = shown.join("\r\n");
        Ok(out)
    }
}

/// `GIT_AUTHOR_NAME` / `_EMAIL` and `GIT_COMMITTER_NAME` / `_EMAIL` from
/// git's configuration as seen in `cwd` with the agent's environment `env`
/// ([`crate::git::config_get_in_env`]), for those `env` does not set
/// already; empty when git has no identity.
#[must_use]
pub fn git_identity(cwd: &Path, env: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, vars) in [
        ("user.name", ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"]),
        ("user.email", ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"]),
    ] {
        let missing: Vec<&str> = vars.into_iter().filter(|v| !env.iter().any(|(k, _)| k == v)).collect();
        if missing.is_empty() {
            continue;
        }
        if let Ok(Some(value)) = crate::git::config_get_in_env(cwd, key, env) {
            out.extend(missing.into_iter().map(|var| (var.to_owned(), value.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_git_identity_is_read_with_the_agents_environment_and_discovery_variables_scrubbed() {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::write(home.path().join(".gitconfig"), "[user]\n\tname = Ada\n\temail = ada@example.com\n")
            .expect("write");
        let (repo, other) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        crate::git::run(repo.path(), &["init", "-q"]).expect("init");
        crate::git::run(other.path(), &["init", "-q"]).expect("init");
        crate::git::run(other.path(), &["config", "user.name", "Mallory"]).expect("config");
        let path = std::env::var("PATH").unwrap_or_default();
        let env = vec![
            ("HOME".to_owned(), home.path().display().to_string()),
            ("PATH".to_owned(), path),
            // Left by a git hook: would point git at another repository.
            ("GIT_DIR".to_owned(), other.path().join(".git").display().to_string()),
            ("GIT_AUTHOR_NAME".to_owned(), "Set".to_owned()),
        ];
        let mut got = git_identity(repo.path(), &env);
        got.sort();
        let want = [("GIT_AUTHOR_EMAIL", "ada@example.com"), ("GIT_COMMITTER_EMAIL", "ada@example.com")]
            .into_iter()
            .chain([("GIT_COMMITTER_NAME", "Ada")])
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>();
        assert_eq!(got, want);
    }
}
