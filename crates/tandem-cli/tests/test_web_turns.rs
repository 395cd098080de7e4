//! A session's turns on the web (issue 22): `tandem serve` lists its
//! checkpoints as `tandem checkpoints --json` does, shows what each turn
//! changed, and rewinds (and undoes) as `tandem rewind` does, refusing
//! with the CLI's words and changing nothing when refused; the POST is
//! guarded like every other action. Real server, supervisor and shell
//! sessions whose turns are reported through `tandem hook`.

use serde_json::{Value, json};

use crate::common::web::Serve;
use crate::common::{TestEnv, hook_event, wait_for};

fn id_of(env: &TestEnv, name: &str) -> String {
    env.session(name)["id"].as_str().expect("id").to_owned()
}

/// `tandem checkpoints NAME --json`, parsed (newest first).
fn checkpoints(env: &TestEnv, name: &str) -> Value {
    serde_json::from_str(&env.ok(&["checkpoints", name, "--json"])).expect("json")
}

/// Waits until the session has `n` checkpoints.
fn wait_checkpoints(env: &TestEnv, name: &str, n: usize) {
    wait_for(&format!("{n} checkpoints of {name}"), || {
        (checkpoints(env, name).as_array().map_or(0, Vec::len) >= n).then_some(())
    });
}

/// One turn as Claude Code's hooks report it: the prompt, `work`, the end.
fn hooked_turn(env: &TestEnv, id: &str, prompt: &str, work: impl FnOnce()) {
    hook_event(env, id, &json!({ "hook_event_name": "UserPromptSubmit", "prompt": prompt }));
    work();
    hook_event(env, id, &json!({ "hook_event_name": "Stop", "last_assistant_message": "done" }));
}

/// The CLI's error line without `error: `: what the API must answer.
fn cli_error(env: &TestEnv, args: &[&str]) -> String {
    let line = env.fails(args);
    line.strip_prefix("error: ").unwrap_or(&line).to_owned()
}

/// A shell session `name` with two reported turns: `notes.txt` written
/// (`one`), then edited (`two`). Answers its id.
pub(crate) fn two_turns(env: &TestEnv, name: &str) -> String {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    let id = id_of(env, name);
    let wt = env.path_of(name);
    hooked_turn(env, &id, "write the notes", || std::fs::write(wt.join("notes.txt"), "one\n").expect("write"));
    wait_checkpoints(env, name, 1);
    hooked_turn(env, &id, "edit the notes", || std::fs::write(wt.join("notes.txt"), "two\n").expect("write"));
    wait_checkpoints(env, name, 2);
    id
}

#[test]
fn turns_are_listed_diffed_rewound_and_undone_over_the_api() {
    let env = TestEnv::new();
    let id = two_turns(&env, "turns");
    let wt = env.path_of("turns");
    let serve = Serve::start(&env);
    let api = format!("/api/sessions/{id}");

    let listed = serve.get_json(&format!("{api}/checkpoints"));
    assert_eq!(listed, checkpoints(&env, "turns"), "the CLI's JSON");
    assert_eq!(listed[0]["n"], 2);
    assert_eq!(listed[0]["prompt"], "edit the notes");

    let diff = serve.get_json(&format!("{api}/checkpoints/2/diff"));
    let patch = diff["patch"].as_str().expect("a patch");
    assert!(patch.contains("-one") && patch.contains("+two"), "{diff}");
    assert_eq!(diff["files"][0]["path"], "notes.txt", "{diff}");
    let both = serve.get_json(&format!("{api}/checkpoints/1/diff?to=2"));
    assert_eq!((both["insertions"].as_u64(), both["deletions"].as_u64()), (Some(1), Some(1)), "{both}");
    let missing = serve.get(&format!("{api}/checkpoints/9/diff"));
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(missing.json()["error"], cli_error(&env, &["diff", "turns", "--checkpoint", "9"]));
    assert_eq!(serve.get(&format!("{api}/checkpoints/x/diff")).status, 400);

    let rewound = serve.post(&format!("{api}/rewind"), &json!({ "checkpoint": 1 }));
    assert_eq!(rewound.status, 200, "{}", rewound.text);
    let done = rewound.json();
    assert_eq!(done["to"]["n"], 1, "{done}");
    assert_eq!(done["before"]["n"], 3, "the state before, checkpointed first: {done}");
    assert!(done["message"].as_str().expect("message").contains("undo goes back to it"), "{done}");
    assert_eq!(std::fs::read_to_string(wt.join("notes.txt")).expect("notes"), "one\n");

    let undone = serve.post(&format!("{api}/rewind"), &json!({ "undo": true }));
    assert_eq!(undone.status, 200, "{}", undone.text);
    assert_eq!(undone.json()["to"]["n"], 3);
    assert_eq!(std::fs::read_to_string(wt.join("notes.txt")).expect("notes"), "two\n", "undo: as before");

    // Bad input: the CLI's words, the CLI's status, nothing changed.
    let before = checkpoints(&env, "turns");
    for (body, status, cli) in [
        (json!({ "checkpoint": 99 }), 404, Some(vec!["rewind", "turns", "99"])),
        (
            json!({ "checkpoint": 1, "files": ["../outside"] }),
            400,
            Some(vec!["rewind", "turns", "1", "--files", "../outside"]),
        ),
        (json!({}), 400, None),
        (json!({ "checkpoint": 1, "undo": true }), 400, None),
        (json!({ "checkpoint": 1, "hard": true }), 400, None),
    ] {
        let answer = serve.post(&format!("{api}/rewind"), &body);
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        if let Some(args) = cli {
            assert_eq!(answer.json()["error"], cli_error(&env, &args), "{body}");
        }
    }
    assert_eq!(checkpoints(&env, "turns"), before, "no checkpoint made by a refused rewind");
    assert_eq!(std::fs::read_to_string(wt.join("notes.txt")).expect("notes"), "two\n");
}

#[test]
fn a_rewind_refused_mid_turn_or_from_another_site_changes_nothing() {
    let env = TestEnv::new();
    let id = two_turns(&env, "busy");
    let wt = env.path_of("busy");
    // A turn starts, and is still running.
    hook_event(&env, &id, &json!({ "hook_event_name": "UserPromptSubmit", "prompt": "more" }));
    std::fs::write(wt.join("notes.txt"), "three\n").expect("write");
    let serve = Serve::start(&env);
    let path = format!("/api/sessions/{id}/rewind");
    let state = env.repo_state();
    let before = checkpoints(&env, "busy");

    let refused = serve.post(&path, &json!({ "checkpoint": 1 }));
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.json()["error"], cli_error(&env, &["rewind", "busy", "1"]));
    assert!(refused.json()["error"].as_str().expect("error").contains("middle of a turn"));

    let cookie = format!("tandem_token={}", serve.token);
    let body = br#"{"checkpoint": 1}"#;
    let json_type = ("Content-Type", "application/json");
    let cross_site =
        serve.raw("POST", &path, &[("Cookie", &cookie), ("Origin", "http://evil.example"), json_type], Some(body));
    assert_eq!(cross_site.status, 403, "{}", cross_site.body);
    let no_token = serve.raw("POST", &path, &[("Origin", &serve.base), json_type], Some(body));
    assert_eq!(no_token.status, 401, "{}", no_token.body);

    assert_eq!(std::fs::read_to_string(wt.join("notes.txt")).expect("notes"), "three\n");
    assert_eq!(env.repo_state(), state, "no ref or branch moved");
    assert_eq!(checkpoints(&env, "busy"), before, "and no checkpoint was made");

    // `stop`: the agent is stopped first, then the rewind goes on.
    let stopped = serve.post(&path, &json!({ "checkpoint": 1, "stop": true }));
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    assert_eq!(std::fs::read_to_string(wt.join("notes.txt")).expect("notes"), "one\n");
}
