//! `tandem serve`'s session API (issue 20): the row, the history (with
//! search) and the diff answer what `tandem history --json` and `tandem
//! diff --json` print for the same session; the terminal WebSocket gives
//! the agent's screen, is read-only until the browser takes control
//! (input refused, resizes kept from the agent's terminal), then passes
//! keys and sizes to the host; a WebSocket from another origin or
//! without the token is refused.

use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::common::web::Serve;
use crate::common::{TestEnv, wait_for};

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A shell session `name`, running, and its id.
fn shell_session(env: &TestEnv, name: &str) -> String {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    env.wait_state(name, "running");
    env.session(name)["id"].as_str().expect("an id").to_owned()
}

#[test]
fn history_and_diff_answer_what_the_cli_prints() {
    let env = TestEnv::new();
    let id = shell_session(&env, "web-hist");
    env.ok(&["send", "web-hist", "echo first-web-line"]);
    env.ok(&["send", "web-hist", "echo second-web-line"]);
    let worktree = env.path_of("web-hist");
    std::fs::write(worktree.join("main.rs"), "fn main() {\n    println!(\"<b>hi</b>\");\n}\n").expect("write");
    std::fs::write(env.path_of("web-hist").join("README.md"), "# test repo\nmore\n").expect("write");
    let serve = Serve::start(&env);

    let row = serve.get(&format!("/api/sessions/{id}"));
    assert_eq!(row.status, 200, "{}", row.body);
    let row = row.json();
    assert_eq!(row["session"]["name"], "web-hist");
    assert_eq!(row["session"]["id"], id.as_str());
    assert!(row["repo"].as_str().is_some_and(|r| r.ends_with("repo")), "{row}");

    let cli: Vec<serde_json::Value> = env
        .ok(&["history", "web-hist", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(cli.len(), 2);
    let history = serve.get(&format!("/api/sessions/{id}/history")).json();
    assert_eq!(history["events"], serde_json::Value::Array(cli.clone()));
    assert_eq!(history["last"], cli[1]["id"]);
    let after = serve.get(&format!("/api/sessions/{id}/history?after={}", cli[0]["id"])).json();
    assert_eq!(after["events"], serde_json::json!([cli[1]]));
    let found = serve.get(&format!("/api/sessions/{id}/history?q=second-web-line")).json();
    assert_eq!(found["events"], serde_json::json!([cli[1]]), "search finds only the matching event");

    let cli: serde_json::Value = serde_json::from_str(&env.ok(&["diff", "web-hist", "--json"])).expect("JSON");
    let diff = serve.get(&format!("/api/sessions/{id}/diff"));
    assert_eq!(diff.status, 200, "{}", diff.body);
    let mut diff = diff.json();
    let patch = diff.as_object_mut().expect("an object").remove("patch").expect("a patch");
    assert_eq!(diff, cli, "the diff report is the CLI's, plus the patch");
    let patch = patch.as_str().expect("text");
    assert!(patch.contains("+    println!(\"<b>hi</b>\");"), "{patch}");
    assert!(patch.contains("+more"), "{patch}");
    assert_eq!(cli["files"].as_array().map(Vec::len), Some(2));

    let bad = serve.get(&format!("/api/sessions/{id}/diff?against=no-such-ref"));
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().is_some_and(|e| e.contains("does not name a commit")), "{}", bad.body);
    let page = serve.get(&format!("/session/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"terminal\"") && page.body.contains("/assets/vendor/xterm.js"), "{}", page.body);
    for asset in [
        "/assets/vendor/xterm.js",
        "/assets/vendor/xterm-addon-fit.js",
        "/assets/vendor/highlight.min.js",
        "/assets/session.js",
    ] {
        let answer = serve.get(asset);
        assert_eq!(answer.status, 200, "{asset} is embedded");
        assert!(answer.body.len() > 1000, "{asset} has its contents");
    }
    let unknown = serve.get("/api/sessions/0123456789ab/history");
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].as_str().is_some_and(|e| e.contains("no session")), "{}", unknown.body);
}

/// Reads the socket until `done(text so far, json messages)` holds.
fn read_until(socket: &mut Socket, what: &str, seen: &mut Screen, done: impl Fn(&Screen) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(seen) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; got {:?} / {:?}", seen.text(), seen.json);
        match socket.read() {
            Ok(Message::Binary(bytes)) => seen.bytes.extend_from_slice(&bytes),
            Ok(Message::Text(text)) => seen.json.push(serde_json::from_str(text.as_str()).expect("JSON text")),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("the terminal socket failed waiting for {what}: {e}"),
        }
    }
}

#[derive(Default)]
struct Screen {
    bytes: Vec<u8>,
    json: Vec<serde_json::Value>,
}

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn send(socket: &mut Socket, value: serde_json::Value) {
    socket.send(Message::Text(value.to_string().into())).expect("send to the terminal socket");
}

fn pty_size(env: &TestEnv, id: &str) -> String {
    std::fs::read_to_string(env.tandem_home.join("state/sessions").join(id).join("pty.size"))
        .expect("the host records its terminal's size")
        .trim()
        .to_owned()
}

#[test]
fn terminal_is_read_only_until_control_then_types_and_resizes() {
    let env = TestEnv::new();
    let id = shell_session(&env, "web-term");
    let serve = Serve::start(&env);
    let before = pty_size(&env, &id);
    let path = format!("/api/sessions/{id}/terminal");

    // A read-only view: the screen, the agent's size; its resize is only
    // kept and its input refused.
    let mut viewer = serve.websocket(&path, None, true).expect("the socket opens");
    let mut seen = Screen::default();
    read_until(&mut viewer, "the shell's prompt", &mut seen, |s| s.text().contains("tsh$"));
    let size = seen.json.iter().find(|m| m["type"] == "size").expect("the agent's size comes first").clone();
    assert_eq!(format!("{} {}", size["rows"], size["cols"]), before);
    send(&mut viewer, serde_json::json!({ "type": "resize", "rows": 33, "cols": 101 }));
    send(&mut viewer, serde_json::json!({ "type": "input", "data": "echo ro-$((40+1))\r" }));
    read_until(&mut viewer, "the read-only refusal", &mut seen, |s| {
        s.json.iter().any(|m| m["type"] == "error" && m["message"].as_str().is_some_and(|t| t.contains("read-only")))
    });

    // A second view takes control (no size of its own yet): its keys
    // reach the shell, which still has the agent's size.
    let mut typist = serve.websocket(&path, None, true).expect("the socket opens");
    let mut typed = Screen::default();
    read_until(&mut typist, "the shell's prompt", &mut typed, |s| s.text().contains("tsh$"));
    send(&mut typist, serde_json::json!({ "type": "control" }));
    send(&mut typist, serde_json::json!({ "type": "input", "data": "echo ctl-$((40+2)) size; stty size\r" }));
    read_until(&mut typist, "the shell's answer", &mut typed, |s| s.text().contains("ctl-42 size"));
    read_until(&mut typist, "stty's size", &mut typed, |s| {
        s.text().split("ctl-42 size").nth(1).is_some_and(|t| t.contains(&before))
    });
    assert!(!typed.text().contains("33 101"), "a read-only view resized the agent's terminal: {}", typed.text());
    assert_eq!(pty_size(&env, &id), before, "a read-only view does not resize the agent's terminal");

    // In control, resizes reach the host.
    send(&mut typist, serde_json::json!({ "type": "resize", "rows": 35, "cols": 90 }));
    wait_for("the new size to reach the host", || (pty_size(&env, &id) == "35 90").then_some(()));
    send(&mut typist, serde_json::json!({ "type": "input", "data": "stty size\r" }));
    read_until(&mut typist, "stty's new size", &mut typed, |s| s.text().contains("35 90"));

    // The viewer takes control: the size it kept goes to the host.
    send(&mut viewer, serde_json::json!({ "type": "control" }));
    wait_for("the kept size to reach the host", || (pty_size(&env, &id) == "33 101").then_some(()));
    read_until(&mut viewer, "the control answer", &mut seen, |s| {
        s.json.iter().any(|m| m["type"] == "control" && m["on"] == true)
    });
    assert!(
        !seen.text().contains("ro-41") && !typed.text().contains("ro-41"),
        "input sent read-only never reached the agent"
    );
    let _ = typist.close(None);

    // The agent's end reaches the browser.
    env.ok(&["stop", "web-term"]);
    read_until(&mut viewer, "the agent's end", &mut seen, |s| s.json.iter().any(|m| m["type"] == "exited"));
    let _ = viewer.close(None);
}

#[test]
fn terminal_socket_refuses_other_origins_and_missing_tokens() {
    let env = TestEnv::new();
    let id = shell_session(&env, "web-guard");
    let serve = Serve::start(&env);
    let path = format!("/api/sessions/{id}/terminal");
    let status = |result: Result<Socket, tungstenite::Error>| match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("refused without an HTTP answer: {e}"),
        Ok(_) => 101,
    };
    assert_eq!(status(serve.websocket(&path, Some("http://evil.example"), true)), 403);
    assert_eq!(status(serve.websocket(&path, None, false)), 401);
    assert_eq!(status(serve.websocket("/api/sessions/0123456789ab/terminal", None, true)), 404);
    assert_eq!(status(serve.websocket(&path, None, true)), 101);
}
