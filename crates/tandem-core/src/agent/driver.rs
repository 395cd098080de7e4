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

use serde_json::Value;

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
}

impl Recorder {
    /// Events gathered before a flush is due.
    pub const BATCH: usize = 256;

    #[must_use]
    pub fn new(session_id: &str) -> Recorder {
        Recorder { session_id: session_id.to_owned(), batch: Vec::new(), activity: None }
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
        self.batch.push((kind, text, data));
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
