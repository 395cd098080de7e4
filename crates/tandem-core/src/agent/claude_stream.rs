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

/// Turns Claude's output lines into history, activity and screen text
/// for one session.
pub struct Reader<'a> {
    pub store: &'a Store,
    pub session_id: &'a str,
}

impl Reader<'_> {
    /// Handles one line of Claude's stdout. Returns the text to show (may
    /// be empty) and the permission request it now waits on, if the line
    /// was one. A line that is not JSON is shown as it is.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn line(&self, line: &str) -> Result<(String, Option<Pending>), StoreError> {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Ok((line.to_owned(), None));
        };
        let id = self.session_id;
        let new =
            |kind, text: String, data: Value| NewEvent { session_id: id, kind, text, data: Some(data), indexed: true };
        let mut shown = Vec::new();
        let mut events = Vec::new();
        let mut pending = None;
        match event["type"].as_str().unwrap_or_default() {
            "system" if event["subtype"] == "init" => {
                if let Some(conversation) = event["session_id"].as_str() {
                    self.store.set_agent_session(id, conversation)?;
                }
                self.store.set_activity(id, Activity::Running, None)?;
            }
            "assistant" => {
                for block in event["message"]["content"].as_array().into_iter().flatten() {
                    match block["type"].as_str().unwrap_or_default() {
                        "text" => {
                            let text = cut(block["text"].as_str().unwrap_or_default());
                            shown.push(format!("● {text}"));
                            events.push(new(EventKind::Message, text, json!({})));
                        }
                        "thinking" => {
                            let text = cut(block["thinking"].as_str().unwrap_or_default());
                            events.push(new(EventKind::Reasoning, text, json!({})));
                        }
                        "tool_use" => {
                            let tool = block["name"].as_str().unwrap_or("tool");
                            let text = format!("{tool}: {}", summary(tool, &block["input"]));
                            shown.push(format!("⚙ {text}"));
                            events.push(new(EventKind::ToolCall, text, block["input"].clone()));
                        }
                        _ => {}
                    }
                }
                self.store.set_activity(id, Activity::Running, None)?;
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
                    events.push(new(EventKind::ToolResult, text, result.clone()));
                }
                if let Some(path) = result["filePath"].as_str() {
                    events.push(new(EventKind::FileChange, format!("changed {path}"), result.clone()));
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
                events.push(new(EventKind::Usage, text, json!({ "usage": event["usage"], "cost_usd": cost })));
                self.store.set_activity(id, Activity::Idle, None)?;
                shown.push(String::new());
            }
            "control_request" if event["request"]["subtype"] == "can_use_tool" => {
                let request = &event["request"];
                let tool = request["tool_name"].as_str().unwrap_or("tool").to_owned();
                let asking = format!("{tool}: {}", summary(&tool, &request["input"]));
                shown.push(format!("? asks permission for {asking} (tandem approve / deny)"));
                events.push(new(EventKind::Permission, format!("asks permission for {asking}"), request.clone()));
                self.store.set_activity(id, Activity::NeedsInput, Some(&asking))?;
                pending = Some(Pending {
                    request_id: event["request_id"].as_str().unwrap_or_default().to_owned(),
                    tool,
                    input: request["input"].clone(),
                });
            }
            _ => {}
        }
        if !events.is_empty() {
            self.store.add_events(&events)?;
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
}
