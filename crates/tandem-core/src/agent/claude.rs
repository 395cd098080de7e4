//! Claude Code in its interactive TUI, made to report to tandem.
//!
//! tandem never reads Claude's screen. It starts Claude with a known
//! conversation id (`--session-id <uuid>`, or `--resume <uuid>` when that
//! conversation exists) and with hooks injected through `--settings`
//! (see `AGENT-PROTOCOLS.md`): for every hook event Claude runs
//! `tandem hook` with the event's JSON on stdin, and [`record_hook`] turns
//! it into history events and the session's activity:
//!
//! | hook | history | activity |
//! |---|---|---|
//! | `SessionStart` | state | `idle` (and the conversation id) |
//! | `UserPromptSubmit` | prompt | `running` |
//! | `PreToolUse` | tool call | `running` |
//! | `PostToolUse` | tool result, file change | |
//! | `PermissionRequest` | permission | `needs-input` |
//! | `Notification` | permission / question, or state when it only waits for a prompt | `needs-input`, or `idle` (an `asking` stays) |
//! | `Stop` | the agent's last message | `asking` when it ends with a question ([`super::question`]), else `idle` |
//! | `SessionEnd` | state | |
//!
//! A hook never decides anything for the user: it prints nothing, so
//! Claude asks its own permission questions as usual.

use std::path::Path;

use rand::RngCore;
use serde_json::{Value, json};

use super::Conversation;
use crate::store::{Activity, EventKind, NewEvent, Session, Store, StoreError};

/// The hook events tandem listens to.
pub const HOOK_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PermissionRequest",
    "Notification",
    "Stop",
    "SessionEnd",
];

/// The most text one event keeps of a tool's input or output; the rest
/// is cut with a note saying how much was left out.
pub const MAX_TEXT: usize = 64 * 1024;

/// The arguments of a one-shot question (`claude -p`): no tools and no
/// saved conversation, which a title needs neither of.
pub const ONE_SHOT: &[&str] = &["-p", "--tools", "", "--no-session-persistence"];

/// What interrupts Claude Code's TUI: Esc (Ctrl-C would quit it).
pub const INTERRUPT: &[u8] = b"\x1b";

/// A random conversation id in UUID v4 form, for `--session-id`.
#[must_use]
pub fn new_session_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The `--settings` JSON that makes Claude run `<exe> hook` for each of
/// [`HOOK_EVENTS`].
#[must_use]
pub fn hook_settings(exe: &Path) -> String {
    let command = format!("{} hook", shell_words::quote(&exe.to_string_lossy()));
    let entry = |matcher: bool| {
        let hooks = json!([{ "type": "command", "command": command }]);
        if matcher { json!([{ "matcher": "*", "hooks": hooks }]) } else { json!([{ "hooks": hooks }]) }
    };
    let hooks: serde_json::Map<String, Value> = HOOK_EVENTS
        .iter()
        .map(|&event| {
            let tool_event = matches!(event, "PreToolUse" | "PostToolUse" | "PermissionRequest");
            (event.to_owned(), entry(tool_event))
        })
        .collect();
    json!({ "hooks": hooks }).to_string()
}

/// `argv` after [`instrument`] with `--resume-session-at MESSAGE` after
/// its `--resume ID`: Claude Code resumes the conversation only up to
/// and including that assistant message (print mode only: the TUI
/// ignores it; checked against Claude Code 2.1.330's own usage text).
/// Unchanged when `argv` resumes nothing.
#[must_use]
pub fn resume_at(mut argv: Vec<String>, message: &str) -> Vec<String> {
    if let Some(at) = argv.iter().position(|a| a == "--resume").filter(|i| i + 1 < argv.len()) {
        argv.splice(at + 2..at + 2, ["--resume-session-at".to_owned(), message.to_owned()]);
    }
    argv
}

/// `argv` (`claude [PROMPT]`) with the conversation's flags and (if
/// `hooks`) `--settings <hooks>` added right after the program.
#[must_use]
pub fn instrument(mut argv: Vec<String>, exe: &Path, conversation: &Conversation, hooks: bool) -> Vec<String> {
    let mut extra: Vec<String> = match conversation {
        Conversation::Any => Vec::new(),
        Conversation::New(id) => vec!["--session-id".into(), id.clone()],
        Conversation::Resume(id) => vec!["--resume".into(), id.clone()],
        // Claude picks the new id and reports it in `SessionStart` /
        // `system/init`.
        Conversation::Fork(id) => vec!["--resume".into(), id.clone(), "--fork-session".into()],
    };
    if hooks {
        extra.extend(["--settings".to_owned(), hook_settings(exe)]);
    }
    let at = 1.min(argv.len());
    argv.splice(at..at, extra);
    argv
}

/// Whether Claude has a transcript of conversation `id` for a session
/// working in `cwd`: `$CLAUDE_CONFIG_DIR/projects/<cwd, / and . as
/// ->/<id>.jsonl` (default config dir `~/.claude`). `env` is the
/// session's environment.
#[must_use]
pub fn has_transcript(env: &[(String, String)], cwd: &Path, id: &str) -> bool {
    let var = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let Some(config) = var("CLAUDE_CONFIG_DIR").or_else(|| var("HOME").map(|h| format!("{h}/.claude"))) else {
        return false;
    };
    let folder: String =
        cwd.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    Path::new(&config).join("projects").join(folder).join(format!("{id}.jsonl")).exists()
}

/// Records one hook event of `session` (the JSON Claude passed on
/// stdin): history events and the session's activity, as the module
/// docs' table says. Unknown events are kept as state events.
///
/// # Errors
/// [`StoreError::Sqlite`].
pub fn record_hook(store: &Store, session: &Session, payload: &Value) -> Result<(), StoreError> {
    let event = payload["hook_event_name"].as_str().unwrap_or_default();
    let id = session.id.as_str();
    let new = |kind, text: String, data: Value| NewEvent {
        session_id: id,
        kind,
        text,
        data: Some(bounded(data)),
        indexed: true,
    };
    let tool = payload["tool_name"].as_str().unwrap_or("tool");
    let input = &payload["tool_input"];
    match event {
        "SessionStart" => {
            if let Some(conversation) = payload["session_id"].as_str() {
                store.set_agent_session(id, conversation)?;
            }
            let source = payload["source"].as_str().unwrap_or("startup");
            store.add_events(&[new(EventKind::State, format!("agent started ({source})"), payload.clone())])?;
            store.set_activity(id, Activity::Idle, None)?;
        }
        "UserPromptSubmit" => {
            let prompt = payload["prompt"].as_str().unwrap_or_default();
            store.add_events(&[new(EventKind::Prompt, cut(prompt), json!({}))])?;
            store.set_activity(id, Activity::Running, None)?;
        }
        "PreToolUse" => {
            store.add_events(&[new(
                EventKind::ToolCall,
                format!("{tool}: {}", summary(tool, input)),
                input.clone(),
            )])?;
            store.set_activity(id, Activity::Running, None)?;
        }
        "PostToolUse" => {
            let response = &payload["tool_response"];
            let path = input["file_path"].as_str().or_else(|| response["filePath"].as_str());
            let secret = path.is_some_and(|p| is_included(session, p));
            let mut events = Vec::new();
            if secret {
                // A copied secret file (`.worktreeinclude`): its path, never
                // its content, and nothing of it in the index.
                let text = format!(
                    "{tool} → {} (content not recorded: a file copied in by .worktreeinclude)",
                    path.unwrap_or_default()
                );
                events.push(NewEvent { indexed: false, ..new(EventKind::ToolResult, text, json!({ "path": path })) });
            } else {
                events.push(new(
                    EventKind::ToolResult,
                    format!("{tool} → {}", cut(&result_text(response))),
                    response.clone(),
                ));
            }
            if let (Some(path), "Write" | "Edit" | "MultiEdit" | "NotebookEdit") = (path, tool) {
                let change = json!({ "path": path, "tool": tool, "patch": if secret { Value::Null } else { response["structuredPatch"].clone() } });
                events.push(new(EventKind::FileChange, format!("changed {path}"), change));
            }
            store.add_events(&events)?;
        }
        "PermissionRequest" => {
            let asking = format!("{tool}: {}", summary(tool, input));
            store.add_events(&[new(
                EventKind::Permission,
                format!("asks permission for {asking}"),
                payload.clone(),
            )])?;
            store.set_activity(id, Activity::NeedsInput, Some(&asking))?;
        }
        "Notification" => {
            let message = payload["message"].as_str().unwrap_or_default();
            let kind = payload["notification_type"].as_str().unwrap_or_default();
            let idle = kind == "idle_prompt" || message.contains("waiting for your input");
            if idle {
                // Not a request: Claude reminds the user it waits (after
                // 60 s). A question it ended its turn with still stands.
                store.add_events(&[new(EventKind::State, format!("waiting: {}", cut(message)), payload.clone())])?;
                if session.activity != Some(Activity::Asking) {
                    store.set_activity(id, Activity::Idle, None)?;
                }
                return Ok(());
            }
            store.add_events(&[new(EventKind::Permission, cut(message), payload.clone())])?;
            if session.activity != Some(Activity::NeedsInput) {
                // A `PermissionRequest` before it said more (tool and input).
                store.set_activity(id, Activity::NeedsInput, Some(message))?;
            }
        }
        "Stop" => {
            let message = payload["last_assistant_message"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| payload["transcript_path"].as_str().and_then(|p| last_message(Path::new(p))))
                .filter(|m| !m.is_empty());
            if let Some(message) = &message {
                store.add_events(&[new(EventKind::Message, cut(message), json!({}))])?;
            }
            // A turn that ends with a question waits for the user's answer.
            match message.as_deref().and_then(super::question::asked) {
                Some(question) => store.set_activity(id, Activity::Asking, Some(&question))?,
                None => store.set_activity(id, Activity::Idle, None)?,
            }
        }
        "SessionEnd" => {
            let reason = payload["reason"].as_str().unwrap_or("exit");
            store.add_events(&[new(EventKind::State, format!("agent ended ({reason})"), payload.clone())])?;
        }
        other => {
            store.add_events(&[new(EventKind::State, format!("hook {other}"), payload.clone())])?;
        }
    }
    Ok(())
}

/// The text of the last assistant message in a Claude transcript (JSON
/// lines, `{"type":"assistant","message":{"content":[{"type":"text",…}]}}`),
/// read from its last 256 KiB; for a `Stop` hook without
/// `last_assistant_message` (older Claude Code).
fn last_message(transcript: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 256 * 1024;
    let mut file = std::fs::File::open(transcript).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    // The last assistant entry: a tool call after the last text means the
    // text was not the last word.
    let last = text
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| entry["type"] == "assistant")?;
    let said: Vec<&str> = last["message"]["content"]
        .as_array()?
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    Some(said.join("\n"))
}

/// A tool input in a line: the command, path, pattern or URL it names,
/// else its JSON.
pub(crate) fn summary(tool: &str, input: &Value) -> String {
    let named = ["command", "file_path", "notebook_path", "pattern", "url", "query", "prompt"]
        .iter()
        .find_map(|k| input[*k].as_str());
    let text = match (tool, named) {
        (_, Some(text)) => text.to_owned(),
        _ => input.to_string(),
    };
    cut(&text)
}

/// A tool result as text: a command's output, a file's path, or the JSON.
fn result_text(response: &Value) -> String {
    match response {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("stdout") => {
            let out = o["stdout"].as_str().unwrap_or_default();
            let err = o.get("stderr").and_then(Value::as_str).unwrap_or_default();
            if err.is_empty() { out.to_owned() } else { format!("{out}\n{err}") }
        }
        Value::Object(o) if o.contains_key("filePath") => {
            format!(
                "{} {}",
                o.get("type").and_then(Value::as_str).unwrap_or("wrote"),
                o["filePath"].as_str().unwrap_or_default()
            )
        }
        other => other.to_string(),
    }
}

/// Whether `path` (absolute, or relative to the worktree) is one the
/// session's `.worktreeinclude` copied in.
fn is_included(session: &Session, path: &str) -> bool {
    let path = Path::new(path);
    let relative = path.strip_prefix(&session.path).unwrap_or(path);
    session.included.iter().any(|p| Path::new(p) == relative)
}

/// `data` as it is, or, past four times [`MAX_TEXT`] as JSON, a note of
/// its size (the event's text keeps the first [`MAX_TEXT`] bytes).
fn bounded(data: Value) -> Value {
    let size = data.to_string().len();
    if size <= 4 * MAX_TEXT { data } else { json!({ "cut": true, "bytes": size }) }
}

/// `text`, cut to [`MAX_TEXT`] bytes on a character boundary.
pub(crate) fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes not recorded)", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_uuid_v4() {
        let id = new_session_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(id, new_session_id());
    }

    #[test]
    fn instrument_puts_the_id_and_hooks_after_the_program() {
        let exe = Path::new("/opt/my tools/tandem");
        let argv = instrument(vec!["/bin/claude".into(), "do it".into()], exe, &Conversation::New("abc".into()), true);
        assert_eq!(&argv[..3], ["/bin/claude", "--session-id", "abc"]);
        assert_eq!(argv[3], "--settings");
        assert_eq!(argv[5], "do it");
        let settings: Value = serde_json::from_str(&argv[4]).expect("json");
        assert_eq!(settings["hooks"]["Stop"][0]["hooks"][0]["command"], "'/opt/my tools/tandem' hook");
        assert_eq!(settings["hooks"]["PreToolUse"][0]["matcher"], "*");
        assert_eq!(settings["hooks"].as_object().expect("map").len(), HOOK_EVENTS.len());
        let resumed = instrument(vec!["/bin/claude".into()], exe, &Conversation::Resume("abc".into()), false);
        assert_eq!(resumed, ["/bin/claude", "--resume", "abc"]);
        let forked = instrument(vec!["/bin/claude".into()], exe, &Conversation::Fork("abc".into()), false);
        assert_eq!(
            resume_at(resumed.clone(), "m1"),
            ["/bin/claude", "--resume", "abc", "--resume-session-at", "m1"],
            "right after the resumed id"
        );
        assert_eq!(resume_at(vec!["/bin/claude".into()], "m1"), ["/bin/claude"], "nothing resumed: unchanged");
        assert_eq!(forked, ["/bin/claude", "--resume", "abc", "--fork-session"]);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let cut = cut(&long);
        assert!(cut.len() < long.len());
        assert!(cut.ends_with("more bytes not recorded)"));
        assert_eq!(result_text(&json!({ "stdout": "ok", "stderr": "" })), "ok");
        assert_eq!(summary("Bash", &json!({ "command": "cargo test" })), "cargo test");
    }
}
