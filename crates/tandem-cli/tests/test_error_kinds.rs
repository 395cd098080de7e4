//! Issue 18, "errors that keep their kind": a refusal made in the
//! supervisor reaches the CLI with its kind, its message and its hints
//! apart (`Response::Error { kind, message, hints }`), and the CLI prints
//! the hint once, on the error's line, exiting by kind.

use std::os::unix::net::UnixStream;

use serde_json::Value;
use tandem_core::connection::{self, ClientError};
use tandem_core::error::ErrorKind;
use tandem_core::paths::Paths;
use tandem_core::protocol::{self, PROTOCOL_VERSION, Request};

use crate::common::{TestEnv, stderr};

/// `tandem rm NAME`'s request, as the CLI sends it.
fn remove(env: &TestEnv, name: &str) -> Request {
    Request::Remove {
        cwd: env.repo.clone(),
        name: name.to_owned(),
        force: false,
        wait: false,
        purge: false,
        env: Vec::new(),
    }
}

/// A running session `risky` with an untracked file, which `rm` refuses
/// to lose.
fn risky(env: &TestEnv) {
    env.ok(&["new", "risky", "--bg", "--agent", "shell"]);
    env.wait_state("risky", "running");
    std::fs::write(env.path_of("risky").join("notes.txt"), "keep me\n").expect("write");
}

/// The supervisor's answer to `request`, as JSON, over a connection of
/// its own (the wire itself, not the client's reading of it).
fn raw_answer(env: &TestEnv, request: &Request) -> Value {
    let mut stream = UnixStream::connect(env.tandem_home.join("run/supervisor.sock")).expect("connect");
    protocol::send(&mut stream, &Request::Hello { version: PROTOCOL_VERSION }).expect("hello");
    let hello: Value = protocol::recv(&mut stream).expect("read hello").expect("a hello");
    assert_eq!(hello["type"], "hello", "{hello}");
    protocol::send(&mut stream, request).expect("send");
    protocol::recv(&mut stream).expect("read answer").expect("an answer")
}

#[test]
fn a_supervisor_refusal_crosses_the_socket_with_its_kind_and_hints() {
    let env = TestEnv::new();
    risky(&env);
    let before = env.repo_state();

    let answer = raw_answer(&env, &remove(&env, "ghost"));
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["kind"], "not_found", "{answer}");
    assert_eq!(answer["message"], "no session named `ghost` in this repository", "{answer}");
    assert_eq!(answer["hints"], serde_json::json!(["`tandem list` shows the sessions"]), "{answer}");

    let answer = raw_answer(&env, &remove(&env, "risky"));
    assert_eq!(answer["kind"], "conflict", "{answer}");
    assert_eq!(answer["message"], "session `risky` has 1 untracked file", "{answer}");
    let hints = answer["hints"].as_array().expect("hints");
    assert_eq!(hints.len(), 1, "{answer}");
    assert!(hints[0].as_str().is_some_and(|h| h.contains("`tandem rm --force risky`")), "{answer}");
    assert_eq!(env.repo_state(), before, "a refused rm changes nothing");

    // The client the CLI uses keeps them: kind, message, hints.
    let home = env.tandem_home.clone();
    let paths = Paths::from_vars(|var| (var == "TANDEM_HOME").then(|| home.clone())).expect("paths");
    let mut client = connection::connect_existing(&paths).expect("connect").expect("a supervisor");
    match client.request(&remove(&env, "ghost")) {
        Err(ClientError::Remote(failure)) => {
            assert_eq!(failure.kind, ErrorKind::NotFound, "{failure:?}");
            assert_eq!(failure.hints, ["`tandem list` shows the sessions"], "{failure:?}");
        }
        other => panic!("expected the supervisor's refusal, got {other:?}"),
    }
}

#[test]
fn the_cli_prints_a_supervisor_hint_once_and_exits_by_kind() {
    let env = TestEnv::new();
    risky(&env);
    // Would lose work (kind `conflict`): exit 1, one line, the hint once.
    let err = env.fails(&["rm", "risky"]);
    assert_eq!(
        err,
        "error: session `risky` has 1 untracked file; commit or push them, or run `tandem rm --force risky` \
         (a snapshot is kept under refs/tandem/archive/risky/)"
    );
    // Not found (kind `not_found`): exit 1, the hint once.
    let err = env.fails(&["rm", "ghost"]);
    assert_eq!(err, "error: no session named `ghost` in this repository; `tandem list` shows the sessions");
    assert_eq!(err.matches("tandem list").count(), 1, "{err}");
    // A usage error is clap's: exit 2.
    let out = env.tandem(&["rm", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
