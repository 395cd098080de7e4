//! Claude Code driven through its stream-json protocol (`--agent
//! claude-structured`): no terminal, one JSON object per line each way
//! (see `AGENT-PROTOCOLS.md`).
//!
//! The host writes prompts, permission answers and interrupts to Claude's
//! stdin with [`prompt`], [`answer`] and [`interrupt`], and hands every
//! line Claude prints to [`Reader::line`], which records history events,
//! sets the session's activity (`running` on `system/init` and
//! `assistant`, `needs-input` on a `can_use_tool` control request, `idle`
//! on `result`) and returns a readable line for the host's screen, so
//! `tandem attach` and `logs` show the conversation.

use serde_json::{Value, json};

use super::claude::{cut, summary};
use crate::store::{Activity, EventKind, NewEvent, Store, StoreError};

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
pub struct Pending {
    pub request_id: String,
    pub tool: String,
    pub input: Value,
}

/// One event waiting in a [`Reader`]'s batch.
type Batched = (EventKind, String, Value);

/// Turns Claude's output lines into history, activity and screen text
/// for one session. Events are batched: they reach the store when the
/// caller calls [`Reader::flush`] (when no more output is waiting, or
/// [`Reader::BATCH`] events have gathered) and always before an activity
/// change, so a reader of the store never sees `idle` before the
/// messages of the turn. A flood of output costs one transaction per
/// batch, not per line.
pub struct Reader {
    session_id: String,
    batch: Vec<Batched>,
    activity: Option<Activity>,
}

impl Reader {
    /// Events gathered before a flush is due.
    pub const BATCH: usize = 256;

    #[must_use]
    pub fn new(session_id: &str) -> Reader {
        Reader { session_id: session_id.to_owned(), batch: Vec::new(), activity: None }
    }

    /// Events waiting for [`Reader::flush`].
    #[must_use]
    pub fn batched(&self) -> usize {
        self.batch.len()
    }

    /// Writes the waiting events in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn flush(&mut self, store: &Store) -> Result<(), StoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let events: Vec<NewEvent<'_>> = self
            .batch
            .iter()
            .map(|(kind, text, data)| NewEvent {
                session_id: &self.session_id,
                kind: *kind,
                text: text.clone(),
                data: Some(data.clone()),
                indexed: true,
            })
            .collect();
        store.add_events(&events)?;
        self.batch.clear();
        Ok(())
    }

    /// Flushes, then records the activity if it changed (or says what it
    /// asks).
    fn set_activity(&mut self, store: &Store, activity: Activity, asking: Option<&str>) -> Result<(), StoreError> {
        if self.activity != Some(activity) || asking.is_some() {
            self.flush(store)?;
            store.set_activity(&self.session_id, activity, asking)?;
            self.activity = Some(activity);
        }
        Ok(())
    }

    /// Handles one line of Claude's stdout. Returns the text to show (may
    /// be empty) and the permission request it now waits on, if the line
    /// was one. A line that is not JSON is shown as it is.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn line(&mut self, store: &Store, line: &str) -> Result<(String, Option<Pending>), StoreError> {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Ok((line.to_owned(), None));
        };
        let mut shown = Vec::new();
        let mut pending = None;
        match event["type"].as_str().unwrap_or_default() {
            "system" if event["subtype"] == "init" => {
                if let Some(conversation) = event["session_id"].as_str() {
                    store.set_agent_session(&self.session_id, conversation)?;
                }
                self.set_activity(store, Activity::Running, None)?;
            }
            "assistant" => {
                for block in event["message"]["content"].as_array().into_iter().flatten() {
                    match block["type"].as_str().unwrap_or_default() {
                        "text" => {
                            let text = cut(block["text"].as_str().unwrap_or_default());
                            shown.push(format!("● {text}"));
                            self.batch.push((EventKind::Message, text, json!({})));
                        }
                        "thinking" => {
                            let text = cut(block["thinking"].as_str().unwrap_or_default());
                            self.batch.push((EventKind::Reasoning, text, json!({})));
                        }
                        "tool_use" => {
                            let tool = block["name"].as_str().unwrap_or("tool");
                            let text = format!("{tool}: {}", summary(tool, &block["input"]));
                            shown.push(format!("⚙ {text}"));
                            self.batch.push((EventKind::ToolCall, text, block["input"].clone()));
                        }
                        _ => {}
                    }
                }
                self.set_activity(store, Activity::Running, None)?;
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
                    self.batch.push((EventKind::ToolResult, text, result.clone()));
                }
                if let Some(path) = result["filePath"].as_str() {
                    self.batch.push((EventKind::FileChange, format!("changed {path}"), result.clone()));
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
                self.batch.push((EventKind::Usage, text, json!({ "usage": event["usage"], "cost_usd": cost })));
                self.set_activity(store, Activity::Idle, None)?;
                shown.push(String::new());
            }
            "control_request" if event["request"]["subtype"] == "can_use_tool" => {
                let request = &event["request"];
                let tool = request["tool_name"].as_str().unwrap_or("tool").to_owned();
                let asking = format!("{tool}: {}", summary(&tool, &request["input"]));
                shown.push(format!("? asks permission for {asking} (tandem approve / deny)"));
                self.batch.push((EventKind::Permission, format!("asks permission for {asking}"), request.clone()));
                self.set_activity(store, Activity::NeedsInput, Some(&asking))?;
                pending = Some(Pending {
                    request_id: event["request_id"].as_str().unwrap_or_default().to_owned(),
                    tool,
                    input: request["input"].clone(),
                });
            }
            _ => {}
        }
        Ok((shown.join("\r\n"), pending))
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

    #[test]
    fn a_flood_is_written_in_batches_and_flushed_before_idle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let repo = store.upsert_repo(std::path::Path::new("/r/.git"), std::path::Path::new("/r")).expect("repo");
        let mut session = crate::store::tests::sample("s1", repo, "flood");
        session.state = crate::store::SessionState::Running;
        store.insert_session(&session).expect("insert");
        let mut reader = Reader::new("s1");
        let init = json!({ "type": "system", "subtype": "init", "session_id": "c0ffee" });
        reader.line(&store, &init.to_string()).expect("init");
        let text = |t: &str| json!({ "type": "assistant", "message": { "content": [{ "type": "text", "text": t }] } });
        for i in 0..1000 {
            reader.line(&store, &text(&format!("line {i}")).to_string()).expect("line");
        }
        assert_eq!(store.events("s1", 0, 10_000).expect("events").len(), 0, "nothing written line by line");
        assert_eq!(reader.batched(), 1000);
        let (shown, _) =
            reader.line(&store, &json!({ "type": "result", "subtype": "success" }).to_string()).expect("result");
        assert_eq!(shown, "");
        let events = store.events("s1", 0, 10_000).expect("events");
        assert_eq!(events.len(), 1001, "the turn's events are written before it is idle");
        assert_eq!(events[999].text, "line 999");
        assert_eq!(events[1000].kind, EventKind::Usage);
        assert_eq!(store.session("s1").expect("get").expect("row").activity, Some(Activity::Idle));
        assert_eq!(reader.batched(), 0);
    }
}
