//! History of agents that do not report events themselves: what tandem
//! sends them is recorded, `history --follow` shows events as they come,
//! and `--json` carries each event whole.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::TestEnv;

#[test]
fn history_follows_new_events_and_prints_json() {
    let env = TestEnv::new();
    env.ok(&["new", "follow-me", "--bg", "--agent", "shell"]);
    env.wait_state("follow-me", "running");
    let mut child = env
        .command_in(&env.repo, &["history", "follow-me", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn history --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    env.ok(&["send", "follow-me", "echo first-of-two"]);
    env.ok(&["send", "follow-me", "echo second-of-two"]);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("history --follow printed the new events");
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen[0].contains("prompt       echo first-of-two"), "{seen:?}");
    assert!(seen[1].contains("prompt       echo second-of-two"), "{seen:?}");

    let events: Vec<serde_json::Value> = env
        .ok(&["history", "follow-me", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["kind"], "prompt");
    assert_eq!(events[1]["text"], "echo second-of-two");
    assert!(events[0]["id"].as_i64() < events[1]["id"].as_i64());
    assert!(events[1]["at_ms"].as_i64().is_some_and(|ms| ms > 1_700_000_000_000));
}
