//! Tasks and trials: one objective, several attempts at it in parallel,
//! each a session with its own worktree and branch (`<task>/t1`, …) and
//! the same brief, compared side by side and one promoted.
//!
//! - The brief ([`brief`]) is the trial's first prompt, and is also
//!   written to `.tandem/brief.md` in its worktree (excluded from git
//!   through the repository's `info/exclude`).
//! - The handoff: the brief asks the agent to end with one in a fixed
//!   shape ([`HANDOFF_SHAPE`]). When a trial's agent goes `idle`, the
//!   supervisor stores its last message as a `handoff` event when it has
//!   that shape, else asks for it once ([`HANDOFF_REQUEST`]) and stores
//!   the answer.
//! - A task's `--check` command runs in each trial's worktree (`sh -c`),
//!   its result kept per trial state ([`run_check`]).

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::store::{CheckResult, Event, EventKind};

/// The heading a handoff starts with.
pub const HANDOFF_HEADING: &str = "## Handoff";

/// The shape of a handoff, as the brief and [`HANDOFF_REQUEST`] give it.
pub const HANDOFF_SHAPE: &str = "## Handoff
### Summary
(what you did, in a few sentences)
### Files changed
(each file, and why)
### Tests run
(each command and its result)
### Open questions
(anything undecided, or `none`)
### Next steps
(what is left, or `none`)";

/// What tandem asks a trial's agent that ended a turn without a handoff.
pub const HANDOFF_REQUEST: &str = "tandem asks for your handoff. Reply with only this, filled in, in this exact shape:";

/// The brief of trial `trial` of `trials` of task `task`.
#[must_use]
pub fn brief(
    task: &str,
    objective: &str,
    trial: i64,
    trials: usize,
    branch: &str,
    owned: &[String],
    check: Option<&str>,
) -> String {
    let mut text = format!(
        "# Task `{task}`: trial {trial} of {trials}\n\n## Objective\n\n{}\n\n## Constraints\n\n",
        objective.trim()
    );
    let others = trials.saturating_sub(1);
    let _ = writeln!(
        text,
        "- Work only in this worktree, on branch `{branch}`, and commit your work there when it is done.{}",
        if others > 0 {
            format!(" {others} other agent(s) work on the same objective in their own worktrees; leave theirs alone.")
        } else {
            String::new()
        }
    );
    if !owned.is_empty() {
        let _ = writeln!(
            text,
            "- Change only these paths: {}.",
            owned.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(check) = check {
        let _ = writeln!(text, "- `{check}` is run in your worktree to compare the trials; make it pass.");
    }
    let _ = write!(
        text,
        "\n## How to report\n\nThis brief is also in `.tandem/brief.md`. When you are done, end your last message with a handoff in exactly this shape:\n\n{HANDOFF_SHAPE}\n"
    );
    text
}

/// The handoff request: [`HANDOFF_REQUEST`] and the shape.
#[must_use]
pub fn handoff_request() -> String {
    format!("{HANDOFF_REQUEST}\n\n{HANDOFF_SHAPE}")
}

/// The handoff part of a message (from its `## Handoff` heading on), if
/// it has one.
#[must_use]
pub fn handoff_in(message: &str) -> Option<&str> {
    message.find(HANDOFF_HEADING).map(|at| message[at..].trim_end())
}

/// The first line of a handoff's summary.
#[must_use]
pub fn summary_line(handoff: &str) -> Option<String> {
    let after = handoff.split_once("### Summary")?.1;
    after.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned)
}

/// What the next step of a trial's handoff is, from its history since
/// its last prompt.
#[derive(Debug, PartialEq, Eq)]
pub enum HandoffStep {
    /// Nothing to do: already stored, or no message yet.
    Nothing,
    /// Store this text (from message `event`) as the handoff.
    Store { event: i64, text: String },
    /// Ask the agent for it.
    Ask,
}

/// Decides the handoff step of an `idle` trial from its events, oldest
/// first (see the module doc).
#[must_use]
pub fn handoff_step(events: &[Event]) -> HandoffStep {
    let last_prompt = events.iter().rposition(|e| e.kind == EventKind::Prompt);
    let Some(message) = events.iter().rev().find(|e| e.kind == EventKind::Message) else {
        return HandoffStep::Nothing;
    };
    let stored = events
        .iter()
        .any(|e| e.kind == EventKind::Handoff && e.data.as_ref().and_then(|d| d["event"].as_i64()) == Some(message.id));
    if stored || last_prompt.is_some_and(|p| events[p].id > message.id) {
        return HandoffStep::Nothing;
    }
    if let Some(handoff) = handoff_in(&message.text) {
        return HandoffStep::Store { event: message.id, text: handoff.to_owned() };
    }
    let asked = last_prompt.is_some_and(|p| events[p].text.starts_with(HANDOFF_REQUEST));
    if asked {
        // Asked, and answered in another shape: keep what it said.
        HandoffStep::Store { event: message.id, text: message.text.trim().to_owned() }
    } else {
        HandoffStep::Ask
    }
}

/// Tokens and cost a session's agent reported, summed over its turns,
/// where known: Claude Code's `result` (tokens in and out, `cost_usd`),
/// Codex's thread total (its last report).
#[must_use]
pub fn usage(events: &[Event]) -> (Option<u64>, Option<f64>) {
    let (mut tokens, mut cost) = (None::<u64>, None::<f64>);
    for e in events.iter().filter(|e| e.kind == EventKind::Usage) {
        let Some(data) = &e.data else { continue };
        if let Some(c) = data["cost_usd"].as_f64() {
            cost = Some(cost.unwrap_or(0.0) + c);
        }
        let usage = &data["usage"];
        if let Some(total) = usage["total"]["totalTokens"].as_u64() {
            tokens = Some(total); // Codex: the thread's running total
        } else {
            let sum: u64 = ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]
                .iter()
                .filter_map(|k| usage[*k].as_u64())
                .sum();
            if usage.is_object() && sum > 0 {
                tokens = Some(tokens.unwrap_or(0) + sum);
            }
        }
    }
    (tokens, cost)
}

/// The last `max` bytes of `text`, from a line start where one is near.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    cut.find('\n').map_or(cut, |n| &cut[n + 1..]).to_owned()
}

/// Runs `command` with `sh -c` in `worktree`, output captured, killed
/// (its process group) after `timeout`; inside `fence` when the trial is
/// sandboxed: the check builds and runs the agent's code (issue 16).
///
/// # Errors
/// When `sh` (or the fence) cannot be started.
pub fn run_check(
    worktree: &Path,
    command: &str,
    timeout: Duration,
    fence: Option<&crate::sandbox::Fence>,
) -> std::io::Result<CheckResult> {
    use std::os::unix::process::CommandExt as _;
    let started = Instant::now();
    let mut argv = vec!["sh".to_owned(), "-c".to_owned(), format!("exec 2>&1; {command}")];
    if let Some(fence) = fence {
        let env = crate::session::env::process_env().0;
        argv = fence.wrap(&argv, &env, false).map_err(std::io::Error::other)?;
    }
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(worktree)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let mut output = tail(&out, 4000);
    if status.is_none() {
        let _ = write!(output, "\n(killed after {} s)", timeout.as_secs());
    }
    Ok(CheckResult {
        exit_code: status.and_then(|s| s.code()),
        output,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        at: crate::unix_now(),
    })
}

/// Writes the brief into a trial's worktree: done by the launch, which
/// readies every worktree ([`crate::session::launch::prepare`]).
pub use crate::session::launch::write_brief;

/// The JSON `data` of a handoff event: which message it came from.
#[must_use]
pub fn handoff_data(event: i64) -> Value {
    serde_json::json!({ "event": event })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, kind: EventKind, text: &str) -> Event {
        Event { id, session_id: "s".into(), at_ms: id, kind, text: text.into(), data: None }
    }

    #[test]
    fn a_handoff_is_stored_when_shaped_else_asked_for_once() {
        let shaped = format!("Done.\n\n{HANDOFF_SHAPE}");
        let events = vec![event(1, EventKind::Prompt, "brief"), event(2, EventKind::Message, &shaped)];
        assert_eq!(handoff_step(&events), HandoffStep::Store { event: 2, text: HANDOFF_SHAPE.to_owned() });
        let mut stored = events.clone();
        stored.push(Event { data: Some(handoff_data(2)), ..event(3, EventKind::Handoff, HANDOFF_SHAPE) });
        assert_eq!(handoff_step(&stored), HandoffStep::Nothing);

        let events = vec![event(1, EventKind::Prompt, "brief"), event(2, EventKind::Message, "All done.")];
        assert_eq!(handoff_step(&events), HandoffStep::Ask);
        let mut asked = events.clone();
        asked.push(event(3, EventKind::Prompt, &handoff_request()));
        assert_eq!(handoff_step(&asked), HandoffStep::Nothing, "waiting for the answer");
        asked.push(event(4, EventKind::Message, "I changed a.rs."));
        assert_eq!(handoff_step(&asked), HandoffStep::Store { event: 4, text: "I changed a.rs.".into() });
        assert_eq!(handoff_step(&[event(1, EventKind::Prompt, "brief")]), HandoffStep::Nothing);
        assert_eq!(summary_line(HANDOFF_SHAPE).as_deref(), Some("(what you did, in a few sentences)"));
    }

    #[test]
    fn usage_sums_claude_turns_and_takes_codex_totals() {
        let usage = |data: Value| Event { data: Some(data), ..event(1, EventKind::Usage, "turn") };
        let claude = [
            usage(serde_json::json!({ "usage": { "input_tokens": 10, "output_tokens": 5 }, "cost_usd": 0.25 })),
            usage(serde_json::json!({ "usage": { "input_tokens": 1, "output_tokens": 1 }, "cost_usd": 0.5 })),
        ];
        assert_eq!(usage_of(&claude), (Some(17), Some(0.75)));
        let codex = [
            usage(serde_json::json!({ "usage": { "total": { "totalTokens": 100 } } })),
            usage(serde_json::json!({ "usage": { "total": { "totalTokens": 250 } } })),
        ];
        assert_eq!(usage_of(&codex), (Some(250), None));
    }

    fn usage_of(events: &[Event]) -> (Option<u64>, Option<f64>) {
        usage(events)
    }

    #[test]
    fn checks_report_exit_codes_output_and_time_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = run_check(dir.path(), "echo out; echo err >&2; exit 3", Duration::from_secs(10), None).expect("run");
        assert_eq!((ok.exit_code, ok.output.as_str()), (Some(3), "out\nerr\n"));
        let slow = run_check(dir.path(), "sleep 30", Duration::from_millis(200), None).expect("run");
        assert_eq!(slow.exit_code, None);
        assert!(slow.output.contains("killed after"), "{}", slow.output);
    }
}
