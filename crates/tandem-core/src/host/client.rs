//! Talking to a session's host from the CLI or the supervisor.

use std::io;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::paths::Paths;
use crate::process;
use crate::protocol::{self, ClientMode, ClientMsg, HOST_PROTOCOL_MIN, HOST_PROTOCOL_VERSION, HostMsg};
use crate::store::{Session, SessionState};

/// Connects to a session's host and says hello in `mode`; returns the
/// stream after the host's `welcome`.
///
/// # Errors
/// `NotFound`/`ConnectionRefused` when no host listens (the agent is not
/// running); `InvalidData` when the host answers with an error or a
/// version this build does not speak.
pub fn connect(paths: &Paths, session_id: &str, mode: ClientMode) -> io::Result<UnixStream> {
    let mut stream = UnixStream::connect(paths.host_socket(session_id))?;
    hello(&mut stream, mode)?;
    Ok(stream)
}

/// Says hello on a host socket, offering every host protocol version this
/// build speaks ([`ClientMsg::hello`]), and reads the welcome. Returns
/// the version the host chose, which must be one of ours (see
/// [`crate::protocol`], "Versions").
///
/// # Errors
/// I/O errors; `InvalidData` when the host answers with an error, with
/// something else, or with a version outside
/// [`HOST_PROTOCOL_MIN`]`..=`[`HOST_PROTOCOL_VERSION`].
pub fn hello(stream: &mut UnixStream, mode: ClientMode) -> io::Result<u32> {
    protocol::send(stream, &ClientMsg::hello(mode))?;
    match protocol::recv::<HostMsg>(stream)? {
        Some(HostMsg::Welcome { version, .. }) if (HOST_PROTOCOL_MIN..=HOST_PROTOCOL_VERSION).contains(&version) => {
            Ok(version)
        }
        Some(HostMsg::Welcome { version, .. }) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the session's host speaks host protocol {version}, this tandem {HOST_PROTOCOL_MIN}..={HOST_PROTOCOL_VERSION}; restart the agent with `tandem respawn`"
            ),
        )),
        Some(HostMsg::Error { message }) => Err(io::Error::new(io::ErrorKind::InvalidData, message)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "the host did not welcome us")),
    }
}

/// Sends one message to a session's host: a prompt, a permission
/// answer or an interrupt ([`ClientMsg`]); the host delivers it the way
/// the agent takes it.
///
/// # Errors
/// No host answers (the agent is not running), or the socket fails.
pub fn tell(paths: &Paths, session: &Session, msg: &ClientMsg) -> io::Result<()> {
    let mut stream = connect(paths, &session.id, ClientMode::Control)?;
    protocol::send(&mut stream, msg)
}

/// Hands a hook event to the session's host to record on its hook
/// channel `socket` ([`ClientMsg::Hook`]; a sandboxed agent's only way to
/// report) and waits for it to be recorded, so events keep
/// the order the agent ran its hooks in. Returns whether the session
/// still carries a name tandem picked.
///
/// # Errors
/// No host answers in 10 s, or it could not record the event.
pub fn hook(socket: &std::path::Path, payload: serde_json::Value) -> io::Result<bool> {
    let mut stream = UnixStream::connect(socket)?;
    hello(&mut stream, ClientMode::Control)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let payload = fit_request(payload, protocol::MAX_REQUEST_LEN - 1024);
    protocol::send(&mut stream, &ClientMsg::Hook { payload })?;
    loop {
        match protocol::recv::<HostMsg>(&mut stream)? {
            Some(HostMsg::Hooked { auto_named }) => return Ok(auto_named),
            Some(HostMsg::Error { message }) => return Err(io::Error::other(message)),
            Some(_) => {}
            None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the host left")),
        }
    }
}

/// Why [`prompt`] did not deliver a prompt.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The store cannot take the prompt's event (a full disk, a read-only
    /// database): checked before typing, so nothing was typed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// No host answers: the agent is not running.
    #[error("no host answers: {0}")]
    NoHost(#[source] io::Error),
}

/// Sends `text` to a session's agent as a prompt ([`ClientMsg::Prompt`])
/// and records it in its history, unless the agent records its prompts
/// itself (Claude Code's TUI, through its hook). It is recorded first, so
/// a prompt the store could not record is not typed either (issue 17: a
/// full disk typed it, then blamed the agent), and the agent's answer
/// follows it in the history.
///
/// # Errors
/// [`PromptError::Store`] before anything is typed, or
/// [`PromptError::NoHost`].
pub fn prompt(paths: &Paths, store: &crate::store::Store, session: &Session, text: &str) -> Result<(), PromptError> {
    // Recorded before it is sent: a structured agent answers at once, and
    // its answer's events (written by the host) must come after the prompt
    // in the history, or a task's handoff pass reads the turn as not
    // answered yet (CI: a trial never asked for its handoff). A prompt
    // that cannot be sent is taken back out of the history.
    let recorded = if session.agent == "claude" {
        None
    } else {
        let event = crate::store::NewEvent {
            session_id: &session.id,
            kind: crate::store::EventKind::Prompt,
            text: text.to_owned(),
            data: None,
            indexed: true,
        };
        Some(store.add_event(&event)?)
    };
    if let Err(e) = tell(paths, session, &ClientMsg::Prompt { text: text.to_owned() }) {
        if let Some(id) = recorded {
            let _ = store.delete_event(id);
        }
        return Err(PromptError::NoHost(e));
    }
    Ok(())
}

/// How many terminals are attached to a session.
///
/// # Errors
/// No host answers, or it answers something else.
pub fn attached(paths: &Paths, session: &Session) -> io::Result<usize> {
    let mut stream = connect(paths, &session.id, ClientMode::Control)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    protocol::send(&mut stream, &ClientMsg::Status)?;
    loop {
        match protocol::read_frame(&mut stream)? {
            Some((protocol::KIND_CONTROL, payload)) => {
                if let Ok(HostMsg::Status { attached }) = serde_json::from_slice(&payload) {
                    return Ok(attached);
                }
            }
            Some(_) => {}
            None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the host left")),
        }
    }
}

/// Stops a session's agent and waits until it is gone: through its host
/// when one answers (which records `stopped`), else by signalling the
/// agent's process group directly (the caller records the state).
/// Returns the state the session ended in.
///
/// # Errors
/// I/O errors talking to the host.
pub fn stop(paths: &Paths, session: &Session, grace: Duration) -> io::Result<SessionState> {
    match connect(paths, &session.id, ClientMode::Control) {
        Ok(mut stream) => {
            protocol::send(&mut stream, &ClientMsg::Stop { grace_ms: grace.as_millis() as u64 })?;
            // The host answers `exited` once the agent is gone (at most
            // `grace` plus the SIGKILL) and closes the stream.
            stream.set_read_timeout(Some(grace + Duration::from_secs(10)))?;
            loop {
                match protocol::read_frame(&mut stream) {
                    Ok(Some((protocol::KIND_CONTROL, payload))) => {
                        if let Ok(HostMsg::Exited { state, .. }) = serde_json::from_slice(&payload) {
                            return Ok(state);
                        }
                    }
                    Ok(Some(_)) => {}
                    // The host is gone without a word: it died with its agent.
                    Ok(None) | Err(_) => return Ok(SessionState::Stopped),
                }
            }
        }
        Err(_) => {
            // No host: kill whatever is left of the agent's group.
            if let Some(pgid) = session.agent_pid.filter(|&p| process::group_alive(p)) {
                process::signal_group(pgid, Signal::SIGHUP);
                process::signal_group(pgid, Signal::SIGTERM);
                let deadline = Instant::now() + grace;
                while process::group_alive(pgid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                process::signal_group(pgid, Signal::SIGKILL);
            }
            Ok(SessionState::Stopped)
        }
    }
}

/// `payload` made to fit in `budget` bytes of JSON, so the host takes it
/// (it refuses a frame over [`protocol::MAX_REQUEST_LEN`]): past the
/// budget, every string is cut to what the store keeps of a text
/// ([`crate::agent::claude::MAX_TEXT`]), and if that is not enough, the
/// tool's input and response become a note of their size.
fn fit_request(mut payload: serde_json::Value, budget: usize) -> serde_json::Value {
    fn cut_strings(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) if s.len() > crate::agent::claude::MAX_TEXT => {
                *s = crate::agent::claude::cut(s);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(cut_strings),
            serde_json::Value::Object(map) => map.values_mut().for_each(cut_strings),
            _ => {}
        }
    }
    let size = |v: &serde_json::Value| serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    if size(&payload) <= budget {
        return payload;
    }
    cut_strings(&mut payload);
    if size(&payload) > budget
        && let Some(map) = payload.as_object_mut()
    {
        for key in ["tool_input", "tool_response"] {
            if let Some(value) = map.get_mut(key) {
                let bytes = size(value);
                *value = serde_json::json!({ "cut": true, "bytes": bytes });
            }
        }
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_payload_too_big_for_a_request_is_cut_to_fit() {
        let small = serde_json::json!({ "hook_event_name": "PostToolUse", "tool_response": "ok" });
        assert_eq!(fit_request(small.clone(), 1024), small);
        let long = "x".repeat(3 << 20);
        let big = serde_json::json!({ "hook_event_name": "PostToolUse", "tool_response": { "stdout": long } });
        let fitted = fit_request(big, protocol::MAX_REQUEST_LEN - 1024);
        assert!(serde_json::to_vec(&fitted).unwrap().len() < protocol::MAX_REQUEST_LEN);
        assert_eq!(fitted["hook_event_name"], "PostToolUse");
        assert!(fitted["tool_response"]["stdout"].as_str().unwrap().contains("more bytes not recorded"));
        let many =
            serde_json::json!({ "hook_event_name": "PostToolUse", "tool_response": vec!["y".repeat(1000); 3000] });
        let fitted = fit_request(many, protocol::MAX_REQUEST_LEN - 1024);
        assert_eq!(fitted["tool_response"]["cut"], true);
    }
}
