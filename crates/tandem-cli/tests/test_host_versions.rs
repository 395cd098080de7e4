//! Issue 18: hosts outlive upgrades of tandem. A host that speaks the
//! previous host protocol (one started by the release before) is still
//! attached, listed, sent prompts and stopped by this one, and a client of
//! the previous release is still welcomed by this release's hosts.
//!
//! "A host of the previous release" without a second binary: the
//! debug-only `TANDEM_HOST_PROTOCOL` makes the hosts a supervisor starts
//! announce and check exactly that version, as hosts before the
//! compatible range did.

use std::time::Duration;

use tandem_core::paths::Paths;
use tandem_core::protocol::{self, HostMsg};

use crate::common::{PROMPT, TestEnv, wait_for};

/// The host protocol version of the release before this one.
fn previous() -> u32 {
    let previous = protocol::HOST_PROTOCOL_VERSION - 1;
    assert!(previous >= protocol::HOST_PROTOCOL_MIN, "this build still speaks the previous host protocol");
    previous
}

#[test]
fn a_host_of_the_previous_protocol_still_attaches_lists_and_stops() {
    let mut env = TestEnv::new();
    // The supervisor this command starts, and so every host it starts,
    // speak the previous protocol: a tandem before the upgrade.
    env.env.push((tandem_core::host::OLD_PROTOCOL_VAR.to_owned(), previous().to_string()));
    env.ok(&["new", "old", "--bg", "--agent", "shell", "--base", "head"]);
    env.wait_state("old", "running");
    // The upgrade: the supervisor goes, the host stays; the next command
    // starts a supervisor of this release.
    env.ok(&["daemon", "stop"]);
    env.env.clear();

    // Listed as running, its screen in `logs`.
    let listed = env.ok(&["list", "--json"]);
    assert!(listed.contains("\"old\""), "{listed}");
    env.wait_state("old", "running");
    wait_for("its prompt in logs", || env.ok(&["logs", "old"]).contains(PROMPT).then_some(()));

    // Attached: keys in, output out, detached again.
    let mut term = env.pty(&["attach", "old"], 24, 80);
    term.wait_for(PROMPT);
    term.type_line("echo typed-$((40+2))");
    term.wait_for("typed-42");
    term.send(b"\x1c");
    assert_eq!(term.wait_exit(), 0);

    // A prompt through the host's control channel.
    env.ok(&["send", "old", "echo sent-$((6*7))"]);
    wait_for("the prompt's output in logs", || env.ok(&["logs", "old"]).contains("sent-42").then_some(()));

    // Stopped; its host ends with its agent.
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let host: i32 = db.query_row("SELECT host_pid FROM sessions WHERE slug = 'old'", [], |r| r.get(0)).expect("host");
    env.ok(&["stop", "old"]);
    env.wait_state("old", "stopped");
    wait_for("the old host to exit", || (!tandem_core::process::is_alive(host)).then_some(()));
}

#[test]
fn a_client_of_the_previous_protocol_is_welcomed_by_a_new_host() {
    let env = TestEnv::new();
    env.ok(&["new", "new", "--bg", "--agent", "shell", "--base", "head"]);
    let id = env.wait_state("new", "running")["id"].as_str().expect("id").to_owned();
    let paths = Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| env.tandem_home.clone())).expect("paths");
    // The hello exactly as the previous release wrote it.
    let hello = format!(r#"{{"type":"hello","version":{},"mode":{{"mode":"control"}}}}"#, previous());
    let mut stream = std::os::unix::net::UnixStream::connect(paths.host_socket(&id)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    protocol::write_frame(&mut stream, protocol::KIND_CONTROL, hello.as_bytes()).expect("hello");
    match protocol::recv::<HostMsg>(&mut stream).expect("an answer") {
        Some(HostMsg::Welcome { version, session_id, .. }) => {
            assert_eq!(version, previous(), "the host speaks the client's version");
            assert_eq!(session_id, id);
        }
        other => panic!("the host did not welcome a client of the previous release: {other:?}"),
    }
    drop(stream);
    // A client whose versions the host no longer speaks is told so.
    let mut stream = std::os::unix::net::UnixStream::connect(paths.host_socket(&id)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let ancient = r#"{"type":"hello","version":1,"newest":2,"mode":{"mode":"control"}}"#;
    protocol::write_frame(&mut stream, protocol::KIND_CONTROL, ancient.as_bytes()).expect("hello");
    match protocol::recv::<HostMsg>(&mut stream).expect("an answer") {
        Some(HostMsg::Error { message }) => {
            assert!(message.contains("host protocol 1..=2") && message.contains("tandem respawn"), "{message}");
        }
        other => panic!("a client of protocol 1..=2 was not refused: {other:?}"),
    }
    drop(stream);
    env.ok(&["stop", "new"]);
    env.wait_state("new", "stopped");
}
