//! What every structured agent has in common: the host drives it over
//! pipes, one JSON message per line each way, through a [`Driver`] (one
//! per protocol: [`super::claude_stream`], [`super::codex`],
//! [`super::gemini`]), and a [`Recorder`] writes what it reports to the
//! store in batches.
//!
//! The host owns the agent's stdin and stdout. It asks the driver for
//! the lines that start the agent ([`Driver::start`]), deliver a prompt,
//! answer a permission request or interrupt a turn, and hands it every
//! line the agent prints ([`Driver::line`]); the driver records history
//! and activity through the recorder and returns the text to show on the
//! session's screen plus any lines to write back (answers to the agent's
//! own requests, a queued prompt once a turn ends).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::store::{Activity, EventKind, NewEvent, Store, StoreError};

/// What the host does after one line of the agent's output.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reply {
    /// Text for the session's screen and log (lines joined by `\r\n`;
    /// empty for none).
    pub shown: String,
    /// Lines to write to the agent's stdin, each ending in `\n`.
    pub write: Vec<String>,
}

impl Reply {
    /// A reply that only shows `lines`.
    #[must_use]
    pub fn show(lines: Vec<String>) -> Reply {
        Reply { shown: lines.join("\r\n"), write: Vec::new() }
    }
}

/// One structured agent's protocol, from the host's side. Lines returned
/// are written to the agent's stdin in order, each ending in `\n`.
pub trait Driver: Send {
    /// The lines that start the agent's conversation (a handshake, if
    /// its protocol has one) and deliver the first `prompt`.
    fn start(&mut self, prompt: Option<&str>) -> Vec<String>;

    /// The lines that deliver a prompt: at once, or (when the protocol
    /// takes one turn at a time) none now and the prompt queued until the
    /// running turn ends.
    fn prompt(&mut self, text: &str) -> Vec<String>;

    /// The lines answering the permission request the agent waits on
    /// (allow it, or deny it with `message`); `None` when none waits.
    fn answer(&mut self, allow: bool, message: Option<&str>) -> Option<Vec<String>>;

    /// The lines that interrupt the running turn (none when no turn runs).
    fn interrupt(&mut self) -> Vec<String>;

    /// Handles one line the agent printed (without its newline).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the store cannot take what it reports.
    fn line(&mut self, rec: &mut Recorder, store: &Store, line: &str) -> Result<Reply, StoreError>;
}

/// One event waiting in a [`Recorder`]'s batch.
type Batched = (EventKind, String, Value);

/// Writes one session's history events and activity for a driver.
/// Events are batched: they reach the store when the host calls
/// [`Recorder::flush`] (when no more output is waiting, or
/// [`Recorder::BATCH`] events have gathered) and always before an
/// activity change, so a reader of the store never sees `idle` before the
/// messages of the turn. A flood of output costs one transaction per
/// batch, not per line.
pub struct Recorder {
    session_id: String,
    batch: Vec<Batched>,
    activity: Option<Activity>,
    /// The agent's last message since its last tool call, taken when the
    /// turn ends ([`Recorder::turn_ended`]).
    last_message: Option<String>,
}

impl Recorder {
    /// Events gathered before a flush is due.
    pub const BATCH: usize = 256;

    #[must_use]
    pub fn new(session_id: &str) -> Recorder {
        Recorder { session_id: session_id.to_owned(), batch: Vec::new(), activity: None, last_message: None }
    }

    /// The session recorded for.
    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Events waiting for [`Recorder::flush`].
    #[must_use]
    pub fn batched(&self) -> usize {
        self.batch.len()
    }

    /// Adds an event to the batch.
    pub fn push(&mut self, kind: EventKind, text: String, data: Value) {
        match kind {
            EventKind::Message => self.last_message = Some(text.clone()),
            // What the agent did after its message: the message is not
            // its last word.
            EventKind::ToolCall | EventKind::ToolResult | EventKind::FileChange | EventKind::Permission => {
                self.last_message = None;
            }
            _ => {}
        }
        self.batch.push((kind, text, data));
    }

    /// Records that the agent's turn ended: `asking` with the question
    /// when its last message of the turn ends with one
    /// ([`crate::agent::question::asked`]), else `idle`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn turn_ended(&mut self, store: &Store) -> Result<(), StoreError> {
        match self.last_message.take().as_deref().and_then(crate::agent::question::asked) {
            Some(question) => self.set_activity(store, Activity::Asking, Some(&question)),
            None => self.set_activity(store, Activity::Idle, None),
        }
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
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_activity(&mut self, store: &Store, activity: Activity, asking: Option<&str>) -> Result<(), StoreError> {
        if self.activity != Some(activity) || asking.is_some() {
            self.flush(store)?;
            store.set_activity(&self.session_id, activity, asking)?;
            self.activity = Some(activity);
        }
        Ok(())
    }

    /// The activity last recorded.
    #[must_use]
    pub fn activity(&self) -> Option<Activity> {
        self.activity
    }
}

/// The client side of JSON-RPC over lines, for agents that speak it
/// (Codex's app-server without the `"jsonrpc"` field, Gemini's ACP with
/// it): numbers tandem's requests and remembers what each asked (`A`), so
/// an answer finds its question. The agent's own request ids may overlap
/// tandem's: a message with a `method` is the agent's.
pub struct Rpc<A> {
    /// Whether messages carry `"jsonrpc": "2.0"`.
    tagged: bool,
    next_id: u64,
    asked: HashMap<u64, A>,
}

/// One message from the agent, sorted by [`Rpc::incoming`].
pub enum Incoming<'a, A> {
    /// The agent asks tandem (`id` and `method`); answer with
    /// [`Rpc::reply`] or [`Rpc::refuse`].
    Request {
        id: &'a Value,
        method: &'a str,
        params: &'a Value,
    },
    /// The answer (`result` or `error`) to a request of tandem's.
    Answer(A),
    Notification {
        method: &'a str,
        params: &'a Value,
    },
    /// An answer to nothing tandem asked, or no JSON-RPC at all.
    Other,
}

impl<A> Rpc<A> {
    #[must_use]
    pub fn new(tagged: bool) -> Rpc<A> {
        Rpc { tagged, next_id: 0, asked: HashMap::new() }
    }

    fn message(&self, mut body: Value) -> String {
        if self.tagged {
            body["jsonrpc"] = json!("2.0");
        }
        format!("{body}\n")
    }

    /// A request line; its answer comes back as [`Incoming::Answer`] with
    /// `asked`.
    pub fn request(&mut self, asked: A, method: &str, params: Value) -> String {
        self.next_id += 1;
        self.asked.insert(self.next_id, asked);
        self.message(json!({ "id": self.next_id, "method": method, "params": params }))
    }

    /// A notification line (without `params` when they are null).
    #[must_use]
    pub fn notify(&self, method: &str, params: Value) -> String {
        if params.is_null() {
            return self.message(json!({ "method": method }));
        }
        self.message(json!({ "method": method, "params": params }))
    }

    /// The answer to the agent's request `id`.
    #[must_use]
    pub fn reply(&self, id: &Value, result: Value) -> String {
        self.message(json!({ "id": id, "result": result }))
    }

    /// Says tandem does not handle the agent's request `method`, so the
    /// agent goes on instead of waiting.
    #[must_use]
    pub fn refuse(&self, id: &Value, method: &str) -> String {
        let message = format!("tandem does not handle {method}");
        self.message(json!({ "id": id, "error": { "code": -32601, "message": message } }))
    }

    /// Whether a request of tandem's for which `which` holds is still
    /// unanswered.
    pub fn waiting(&self, which: impl Fn(&A) -> bool) -> bool {
        self.asked.values().any(which)
    }

    /// Sorts a message from the agent (forgetting an answered request).
    pub fn incoming<'a>(&mut self, msg: &'a Value) -> Incoming<'a, A> {
        match (msg.get("id"), msg["method"].as_str()) {
            (Some(id), Some(method)) => Incoming::Request { id, method, params: &msg["params"] },
            (Some(id), None) => {
                id.as_u64().and_then(|id| self.asked.remove(&id)).map_or(Incoming::Other, Incoming::Answer)
            }
            (None, Some(method)) => Incoming::Notification { method, params: &msg["params"] },
            (None, None) => Incoming::Other,
        }
    }
}

/// The error message of a JSON-RPC answer, if it is an error.
#[must_use]
pub fn rpc_error(msg: &Value) -> Option<String> {
    msg.get("error").map(|e| e["message"].as_str().unwrap_or("an error").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_numbers_requests_and_tells_the_agents_requests_from_answers() {
        let mut rpc: Rpc<&str> = Rpc::new(true);
        let first: Value = serde_json::from_str(&rpc.request("init", "initialize", json!({}))).expect("json");
        assert_eq!((first["jsonrpc"].as_str(), first["id"].as_u64()), (Some("2.0"), Some(1)));
        assert!(rpc.waiting(|a| *a == "init"));
        // The agent's own request 1 is not the answer to ours.
        let theirs = json!({ "id": 1, "method": "session/request_permission", "params": {} });
        assert!(matches!(rpc.incoming(&theirs), Incoming::Request { method: "session/request_permission", .. }));
        assert!(rpc.waiting(|a| *a == "init"));
        let answer = json!({ "id": 1, "result": {} });
        assert!(matches!(rpc.incoming(&answer), Incoming::Answer("init")));
        assert!(!rpc.waiting(|_| true));
        assert!(matches!(rpc.incoming(&answer), Incoming::Other), "answered once");
        let bare: Rpc<()> = Rpc::new(false);
        assert_eq!(bare.notify("initialized", Value::Null), "{\"method\":\"initialized\"}\n");
        let refused: Value = serde_json::from_str(&bare.refuse(&json!(7), "fs/read")).expect("json");
        assert_eq!(refused["error"]["code"], -32601);
        assert!(refused.get("jsonrpc").is_none());
        assert_eq!(rpc_error(&json!({ "error": { "message": "no" } })).as_deref(), Some("no"));
    }
}
