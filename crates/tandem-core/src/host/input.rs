//! What reaches the agent as input besides a client's keys: prompts
//! ([`prompt`]: a structured agent's user message, or typed into a
//! terminal agent by the `typer` thread once it takes input,
//! [`type_prompts`]) and answers to its permission requests
//! ([`answer`]).

use std::collections::VecDeque;
use std::io::{self, Write};
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
    let mut typer = lock(&shared.typer);
    if typer.closed {
        return Err(io::Error::new(io::ErrorKind::NotConnected, "the agent takes no more input"));
    }
    typer.queue.push_back(text.to_owned());
    if !typer.running {
        let weak = Arc::downgrade(shared);
        if let Err(e) = thread::Builder::new().name("typer".into()).spawn(move || type_prompts(&weak)) {
            // Not typed later either: the caller was told it failed.
            typer.queue.pop_back();
            return Err(e);
        }
        typer.running = true;
    }
    Ok(())
}

/// Prompts waiting to be typed into a terminal agent, and whether a
/// `typer` thread is typing them: one runs only while there are prompts
/// to type (an idle host keeps no thread for them).
#[derive(Debug, Default)]
pub(super) struct Typer {
    queue: VecDeque<String>,
    running: bool,
    /// The agent's input is closed: no prompt is taken any more.
    closed: bool,
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
fn type_prompts(shared: &Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else { return };
        let text = {
            let mut typer = lock(&shared.typer);
            let Some(text) = typer.queue.pop_front() else {
                typer.running = false;
                return;
            };
            text
        };
        wait_until(DRAW_WAIT, || !lock(&shared.screen).0.screen().contents().trim().is_empty());
        wait_until(QUIET_WAIT, || lock(&shared.last_output).is_some_and(|t| t.elapsed() >= QUIET));
        let before = lock(&shared.screen).0.screen().contents();
        let typed = lock(&shared.writer).write_all(text.as_bytes()).is_ok() && {
            wait_until(ECHO_WAIT, || lock(&shared.screen).0.screen().contents() != before);
            thread::sleep(ENTER_DELAY);
            lock(&shared.writer).write_all(b"\r").is_ok()
        };
        if !typed {
            let mut typer = lock(&shared.typer);
            (typer.closed, typer.running) = (true, false);
            typer.queue.clear();
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
