//! What reaches the agent as input besides a client's keys: prompts
//! ([`prompt`]: a structured agent's user message, or typed into a
//! terminal agent by the `typer` thread once it takes input,
//! [`type_prompts`]) and answers to its permission requests
//! ([`answer`]).

use std::io::{self, Write};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::output::show;
use super::structured::write_lines;
use super::{Shared, lock};

/// Sends a prompt: a user message line to a structured agent; else
/// queues it for the `typer` thread, which types it once the agent takes
/// input ([`type_prompts`]).
pub(super) fn prompt(shared: &Arc<Shared>, text: &str) -> io::Result<()> {
    if shared.structured {
        show(shared, &format!("› {text}\r\n"));
        let lines = lock(&shared.driver).as_mut().map(|d| d.prompt(text)).unwrap_or_default();
        write_lines(shared, &lines);
        return Ok(());
    }
    match lock(&shared.typer).as_ref() {
        Some(typer) if typer.send(text.to_owned()).is_ok() => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::NotConnected, "the agent takes no more input")),
    }
}

/// Types each prompt from `prompts` into a terminal agent, in order, once
/// the agent takes input: it has drawn something (at most [`DRAW_WAIT`])
/// and then been quiet for [`QUIET`] (at most [`QUIET_WAIT`]). The text goes first;
/// Enter follows when the screen has changed (the agent took the text,
/// at most [`ECHO_WAIT`]), and [`ENTER_DELAY`] later.
///
/// Waiting matters: Claude Code reports its session started (its
/// `SessionStart` hook, the moment tandem calls it idle) before its TUI
/// draws, and keys typed before then land in its early-input buffer,
/// whose Enter is not always taken as a submit.
pub(super) fn type_prompts(shared: &Weak<Shared>, prompts: &Receiver<String>) {
    while let Ok(text) = prompts.recv() {
        let Some(shared) = shared.upgrade() else { return };
        wait_until(DRAW_WAIT, || !lock(&shared.screen).0.screen().contents().trim().is_empty());
        wait_until(QUIET_WAIT, || lock(&shared.last_output).is_some_and(|t| t.elapsed() >= QUIET));
        let before = lock(&shared.screen).0.screen().contents();
        if lock(&shared.writer).write_all(text.as_bytes()).is_err() {
            return;
        }
        wait_until(ECHO_WAIT, || lock(&shared.screen).0.screen().contents() != before);
        thread::sleep(ENTER_DELAY);
        if lock(&shared.writer).write_all(b"\r").is_err() {
            return;
        }
    }
}

/// Polls `ready` every 20 ms until it holds or `limit` has passed.
fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}

/// How long a terminal agent's output must have paused before a prompt
/// is typed: its screen is drawn.
const QUIET: Duration = Duration::from_millis(300);

/// The longest a prompt waits for the agent's first screen, then for a
/// pause; then it is typed anyway (an agent that keeps printing still
/// gets it).
const DRAW_WAIT: Duration = Duration::from_secs(20);
const QUIET_WAIT: Duration = Duration::from_secs(2);

/// The longest Enter waits for typed text to show (an agent that does
/// not echo still gets it).
const ECHO_WAIT: Duration = Duration::from_secs(5);

/// How long after typed text its Enter follows: long enough for a TUI
/// (Claude Code's) to have taken the text as typing, not a paste.
const ENTER_DELAY: Duration = Duration::from_millis(150);

/// Answers the pending permission request: a control response to a
/// structured agent; else Enter ("Yes") or Esc ("No"), then `message` as
/// a prompt once the dialog has closed.
pub(super) fn answer(shared: &Arc<Shared>, allow: bool, message: Option<&str>) -> io::Result<()> {
    if shared.structured {
        let Some(lines) = lock(&shared.driver).as_mut().and_then(|d| d.answer(allow, message)) else {
            return Ok(());
        };
        show(shared, if allow { "  approved\r\n" } else { "  denied\r\n" });
        write_lines(shared, &lines);
        return Ok(());
    }
    lock(&shared.writer).write_all(if allow { b"\r" } else { b"\x1b" })?;
    if let Some(message) = message.filter(|_| !allow).map(str::to_owned) {
        let shared = Arc::clone(shared);
        thread::Builder::new().name("deny-message".into()).spawn(move || {
            thread::sleep(Duration::from_millis(300));
            let _ = prompt(&shared, &message);
        })?;
    }
    Ok(())
}
