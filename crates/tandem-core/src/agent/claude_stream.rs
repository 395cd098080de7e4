//! Claude Code driven through its stream-json protocol (`--agent
//! claude-structured`): no terminal, one JSON object per line each way
//! (see `AGENT-PROTOCOLS.md`).
//!
//! [`ClaudeStream`] is its [`Driver`]: prompts, permission answers and
//! interrupts are the lines [`prompt`], [`answer`] and [`interrupt`];
//! every line Claude prints goes to [`Driver::line`], which records history events,
//! sets the session's activity (`running` on `system/init` and
//! `assistant`, `needs-input` on a `can_use_tool` control request, `idle`
//! on `result`) and returns a readable line for the host's screen, so
//! `tandem attach` and `logs` show the conversation.

use std::path::Path;

use serde_json::{Value, json};

use super::Conversation;
use super::claude::{cut, summary};
use super::driver::{Driver, Recorder, Reply};
use crate::store::{Activity, EventKind, Store, StoreError};

/// The arguments after the program: stream-json both ways, permission
/// questions on stdio (`--permission-prompt-tool stdio`).
pub const ARGS: &[&str] = &[
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--permission-mode",
    "default",
    "--permission-prompt-tool",
    "stdio",
];

/// The driver of `claude-structured`; it needs neither the working
/// directory nor the conversation (those are Claude's own arguments).
#[must_use]
pub fn driver(_cwd: &Path, _conversation: &Conversation) -> Box<dyn Driver> {
    Box::new(ClaudeStream::new())
}

/// A user message line carrying `text`.
#[must_use]
pub fn prompt(text: &str) -> String {
    format!("{}\n", json!({ "type": "user", "message": { "role": "user", "content": text } }))
}

/// The answer to permission request `request_id`: allow with the tool's
/// `input` unchanged, or deny with `message`.
#[must_use]
pub fn answer(request_id: &str, input: &Value, allow: bool, message: Option<&str>) -> String {
    let response = if allow {
        json!({ "behavior": "allow", "updatedInput": input })
    } else {
        json!({ "behavior": "deny", "message": message.unwrap_or("The user denied this.") })
    };
    let line = json!({
        "type": "control_response",
        "response": { "subtype": "success", "request_id": request_id, "response": response },
    });
    format!("{line}\n")
}

/// An interrupt request: the turn ends (`error_during_execution`), the
/// process stays.
#[must_use]
pub fn interrupt(request_id: &str) -> String {
    format!(
        "{}\n",
        json!({ "type": "control_request", "request_id": request_id, "request": { "subtype": "interrupt" } })
    )
}

/// A permission request Claude waits on.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    request_id: String,
    input: Value,
}

/// Claude Code's stream-json protocol as a [`Driver`]: prompts go in at
/// once (Claude queues one sent during a turn itself).
#[derive(Default)]
pub struct ClaudeStream {
    pending: Option<Pending>,
    interrupts: u64,
}

impl ClaudeStream {
    #[must_use]
    pub fn new() -> ClaudeStream {
        ClaudeStream::default()
    }
}

impl Driver for ClaudeStream {
    fn start(&mut self, first: Option<&str>) -> Vec<String> {
        first.map(prompt).into_iter().collect()
    }

    fn prompt(&mut self, text: &str) -> Vec<String> {
        vec![prompt(text)]
    }

    fn answer(&mut self, allow: bool, message: Option<&str>) -> Option<Vec<String>> {
        let pending = self.pending.take()?;
        Some(vec![answer(&pending.request_id, &pending.input, allow, message)])
    }

    fn interrupt(&mut self) -> Vec<String> {
        self.interrupts += 1;
        vec![interrupt(&format!("interrupt-{}", self.interrupts))]
    }

    /// Handles one line of Claude's stdout; a line that is not JSON is
    /// shown as it is.
    fn line(&mut self, rec: &mut Recorder, store: &Store, line: &str) -> Result<Reply, StoreError> {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Ok(Reply::show(vec![line.to_owned()]));
        };
        let mut shown = Vec::new();
        match event["type"].as_str().unwrap_or_default() {
            "system" if event["subtype"] == "init" => {
                if let Some(conversation) = event["session_id"].as_str() {
                    store.set_agent_session(rec.session_id(), conversation)?;
                }
                rec.set_activity(store, Activity::Running, None)?;
            }
            "assistant" => {
                for block in event["message"]["content"].as_array().into_iter().flatten() {
                    match block["type"].as_str().unwrap_or_default() {
                        "text" => {
                            let text = cut(block["text"].as_str().unwrap_or_default());
                            shown.push(format!("● {text}"));
                            // Its id: where `rewind --conversation` resumes
                            // (`--resume-session-at`).
                            let data = event["uuid"].as_str().map_or_else(|| json!({}), |id| json!({ "uuid": id }));
                            rec.push(EventKind::Message, text, data);
                        }
                        "thinking" => {
                            let text = cut(block["thinking"].as_str().unwrap_or_default());
                            rec.push(EventKind::Reasoning, text, json!({}));
                        }
                        "tool_use" => {
                            let tool = block["name"].as_str().unwrap_or("tool");
                            let text = format!("{tool}: {}", summary(tool, &block["input"]));
                            shown.push(format!("⚙ {text}"));
                            rec.push(EventKind::ToolCall, text, block["input"].clone());
                        }
                        _ => {}
                    }
                }
                rec.set_activity(store, Activity::Running, None)?;
            }
            "user" => {
                let result = &event["tool_use_result"];
                for block in event["message"]["content"].as_array().into_iter().flatten() {
                    if block["type"] != "tool_result" {
                        continue;
                    }
                    let text = match (result["stdout"].as_str(), &block["content"]) {
                        (Some(out), _) => out.to_owned(),
                        (None, Value::String(s)) => s.clone(),
                        (None, other) => other.to_string(),
                    };
                    let text = cut(&text);
                    shown.push(format!("  ⎿ {}", text.lines().next().unwrap_or_default()));
                    rec.push(EventKind::ToolResult, text, result.clone());
                }
                if let Some(path) = result["filePath"].as_str() {
                    rec.push(EventKind::FileChange, format!("changed {path}"), result.clone());
                }
            }
            "result" => {
                let cost = event["total_cost_usd"].as_f64().unwrap_or_default();
                let turns = event["num_turns"].as_u64().unwrap_or_default();
                let text = format!(
                    "turn {} ({turns} steps, {} ms, ${cost:.4})",
                    event["subtype"].as_str().unwrap_or("done"),
                    event["duration_ms"].as_u64().unwrap_or_default()
                );
                rec.push(EventKind::Usage, text, json!({ "usage": event["usage"], "cost_usd": cost }));
                rec.turn_ended(store)?;
                shown.push(String::new());
            }
            "control_request" if event["request"]["subtype"] == "can_use_tool" => {
                let request = &event["request"];
                let tool = request["tool_name"].as_str().unwrap_or("tool").to_owned();
                let asking = format!("{tool}: {}", summary(&tool, &request["input"]));
                shown.push(format!("? asks permission for {asking} (tandem approve / deny)"));
                rec.push(EventKind::Permission, format!("asks permission for {asking}"), request.clone());
                rec.set_activity(store, Activity::NeedsInput, Some(&asking))?;
                self.pending = Some(Pending {
                    request_id: event["request_id"].as_str().unwrap_or_default().to_owned(),
                    input: request["input"].clone(),
                });
            }
            _ => {}
        }
        Ok(Reply::show(shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_written_to_claude_follow_its_protocol() {
        let p: Value = serde_json::from_str(&prompt("hi")).expect("json");
        assert_eq!(p, json!({ "type": "user", "message": { "role": "user", "content": "hi" } }));
        let a: Value = serde_json::from_str(&answer("r1", &json!({ "command": "ls" }), true, None)).expect("json");
        assert_eq!(a["response"]["request_id"], "r1");
        assert_eq!(a["response"]["response"]["updatedInput"]["command"], "ls");
        let d: Value = serde_json::from_str(&answer("r2", &Value::Null, false, Some("no"))).expect("json");
        assert_eq!(d["response"]["response"], json!({ "behavior": "deny", "message": "no" }));
        let i: Value = serde_json::from_str(&interrupt("x")).expect("json");
        assert_eq!(i["request"]["subtype"], "interrupt");
        assert!(prompt("a\nb").ends_with("}\n") && prompt("a\nb").matches('\n').count() == 1);
    }

    /// Issue 19: a turn whose last message asks the user is `asking`
    /// with the question; one whose question was followed by a tool call
    /// (it went on by itself) is `idle`.
    #[test]
    fn a_turn_ending_in_a_question_is_asking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let repo = store.upsert_repo(std::path::Path::new("/r/.git"), std::path::Path::new("/r")).expect("repo");
        let mut session = crate::store::tests::sample("s1", repo, "asks");
        session.state = crate::store::SessionState::Running;
        store.insert_session(&session).expect("insert");
        let (mut driver, mut rec) = (ClaudeStream::new(), Recorder::new("s1"));
        let mut line = |v: Value| driver.line(&mut rec, &store, &v.to_string()).expect("line");
        let text = |t: &str| json!({ "type": "assistant", "message": { "content": [{ "type": "text", "text": t }] } });
        let tool = json!({ "type": "assistant", "message": { "content": [{ "type": "tool_use", "name": "Bash", "input": { "command": "ls" } }] } });
        let result = json!({ "type": "result", "subtype": "success" });
        let activity = || {
            let s = store.session("s1").expect("get").expect("row");
            (s.activity, s.asking)
        };
        line(text("Two ways to go.\n\nWhich database should I use?"));
        line(result.clone());
        assert_eq!(activity(), (Some(Activity::Asking), Some("Which database should I use?".to_owned())));
        line(text("Shall I look first?"));
        line(tool);
        line(result);
        assert_eq!(activity(), (Some(Activity::Idle), None));
    }

    #[test]
    fn a_flood_is_written_in_batches_and_flushed_before_idle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let repo = store.upsert_repo(std::path::Path::new("/r/.git"), std::path::Path::new("/r")).expect("repo");
        let mut session = crate::store::tests::sample("s1", repo, "flood");
        session.state = crate::store::SessionState::Running;
        store.insert_session(&session).expect("insert");
        let (mut driver, mut rec) = (ClaudeStream::new(), Recorder::new("s1"));
        let init = json!({ "type": "system", "subtype": "init", "session_id": "c0ffee" });
        driver.line(&mut rec, &store, &init.to_string()).expect("init");
        let text = |t: &str| json!({ "type": "assistant", "message": { "content": [{ "type": "text", "text": t }] } });
        for i in 0..1000 {
            driver.line(&mut rec, &store, &text(&format!("line {i}")).to_string()).expect("line");
        }
        assert_eq!(store.events("s1", 0, 10_000).expect("events").len(), 0, "nothing written line by line");
        assert_eq!(rec.batched(), 1000);
        let reply = driver
            .line(&mut rec, &store, &json!({ "type": "result", "subtype": "success" }).to_string())
            .expect("result");
        assert_eq!(reply.shown, "");
        let events = store.events("s1", 0, 10_000).expect("events");
        assert_eq!(events.len(), 1001, "the turn's events are written before it is idle");
        assert_eq!(events[999].text, "line 999");
        assert_eq!(events[1000].kind, EventKind::Usage);
        assert_eq!(store.session("s1").expect("get").expect("row").activity, Some(Activity::Idle));
        assert_eq!(rec.batched(), 0);
    }
}
