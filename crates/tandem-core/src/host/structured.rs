//! A structured agent (no PTY, JSON lines on pipes): its output read
//! through its protocol's driver ([`crate::agent::driver`]), history
//! recorded to the store and a readable line shown ([`pump_stream`]);
//! the driver's lines written to its stdin ([`write_lines`]).

use std::io::{self, BufRead, Read, Write};

use crate::agent::driver::{Recorder, Reply};

use super::output::show;
use super::{Shared, lock, store_of};

/// Reads a structured agent's output lines: history and activity go to
/// the store, a readable line to the screen, the log and attached
/// clients.
pub(super) fn pump_stream(shared: &Shared, reader: Box<dyn Read + Send>) {
    let mut input = io::BufReader::new(reader);
    let mut rec = Recorder::new(&shared.session_id);
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let shown = {
            let store = match store_of(shared) {
                Ok(store) => store,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record the agent's output");
                    break;
                }
            };
            let mut driver = lock(&shared.driver);
            let Some(driver) = driver.as_mut() else { break };
            let reply = driver.line(&mut rec, &store, line.trim_end()).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot record the agent's output");
                Reply::default()
            });
            write_lines(shared, &reply.write);
            // Write when the agent has paused or a batch is full.
            if (input.buffer().is_empty() || rec.batched() >= Recorder::BATCH)
                && let Err(e) = rec.flush(&store)
            {
                tracing::warn!(error = %e, "cannot record the agent's output");
            }
            reply.shown
        };
        if !shown.is_empty() {
            show(shared, &format!("{shown}\r\n"));
        }
    }
    if let Err(e) = store_of(shared).and_then(|store| rec.flush(&store)) {
        tracing::warn!(error = %e, "cannot record the agent's output");
    }
}

/// Writes a driver's lines to the agent's stdin, in order.
pub(super) fn write_lines(shared: &Shared, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let mut writer = lock(&shared.writer);
    for line in lines {
        if let Err(e) = writer.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "cannot write to the agent");
            return;
        }
    }
    let _ = writer.flush();
}
