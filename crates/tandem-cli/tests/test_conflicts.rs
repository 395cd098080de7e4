//! Conflict control: `tandem conflicts`, and its marks in `tandem list`.

use std::path::Path;

use crate::common::TestEnv;

fn commit(env: &TestEnv, wt: &Path, file: &str, text: &str, message: &str) {
    std::fs::write(wt.join(file), text).expect("write");
    env.git_in(wt, &["add", file]);
    env.git_in(wt, &["commit", "-q", "-m", message]);
}

fn report(env: &TestEnv) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["conflicts", "--json"])).expect("json")
}

fn pair<'a>(report: &'a serde_json::Value, a: &str, b: &str) -> Option<&'a serde_json::Value> {
    report["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .find(|p| (p["a"] == a && p["b"] == b) || (p["a"] == b && p["b"] == a))
}

fn session<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["sessions"].as_array().expect("sessions").iter().find(|s| s["name"] == name).expect("session")
}

#[test]
fn conflicts_are_predicted_from_commits_and_uncommitted_work() {
    let env = TestEnv::new();
    commit(&env, &env.repo, "shared.txt", "one\ntwo\nthree\n", "shared");
    for name in ["left", "right", "docs", "code", "dirty", "idle"] {
        env.ok(&["new", name, "--bg", "--agent", "shell", "--base", "head"]);
    }
    commit(&env, &env.path_of("left"), "shared.txt", "one\nLEFT\nthree\n", "left edit");
    commit(&env, &env.path_of("right"), "shared.txt", "one\nRIGHT\nthree\n", "right edit");
    commit(&env, &env.path_of("docs"), "docs.md", "docs\n", "docs");
    commit(&env, &env.path_of("code"), "code.rs", "fn main() {}\n", "code");
    // Only in the worktree, never committed.
    std::fs::write(env.path_of("dirty").join("shared.txt"), "one\nDIRTY\nthree\n").expect("write");
    let dirty_status = env.git_in(&env.path_of("dirty"), &["status", "--porcelain"]);

    let r = report(&env);
    let lr = pair(&r, "left", "right").expect("left and right");
    assert_eq!(lr["overlap"], serde_json::json!(["shared.txt"]));
    assert_eq!(lr["conflicts"], serde_json::json!(["shared.txt"]));
    let ld = pair(&r, "left", "dirty").expect("a conflict in uncommitted work");
    assert_eq!(ld["conflicts"], serde_json::json!(["shared.txt"]));
    assert!(pair(&r, "docs", "code").is_none(), "different files: no overlap, clean");
    assert!(pair(&r, "left", "docs").is_none());
    assert_eq!(session(&r, "docs")["touched"], serde_json::json!(["docs.md"]));
    assert_eq!(session(&r, "idle")["touched"], serde_json::json!([]));
    assert_eq!(r["pairs_checked"], 10, "five sessions with work, the idle one in no pair");
    let mut left_with: Vec<String> = serde_json::from_value(session(&r, "left")["conflicts_with"].clone()).unwrap();
    left_with.sort();
    assert_eq!(left_with, ["dirty", "right"]);
    assert_eq!(
        env.git_in(&env.path_of("dirty"), &["status", "--porcelain"]),
        dirty_status,
        "the snapshot changed nothing in the worktree"
    );

    let text = env.ok(&["conflicts"]);
    assert!(text.contains("left ↔ right") && text.contains("would conflict in shared.txt"), "{text}");
    assert!(text.contains("6 session(s), 10 pair(s) checked: 3 would conflict"), "{text}");

    // `list` marks them.
    let listed = env.session("right");
    assert_eq!(listed["conflicts_with"].as_array().map(Vec::len), Some(2), "{listed}");
    let table = env.ok(&["list"]);
    assert!(table.lines().next().unwrap_or_default().contains("CONFLICTS"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("docs") && l.contains(" - ")), "{table}");

    // A new commit changes the answer: docs now edits the same line.
    commit(&env, &env.path_of("docs"), "shared.txt", "one\nDOCS\nthree\n", "docs edits shared");
    let r = report(&env);
    assert_eq!(pair(&r, "docs", "left").expect("now conflicting")["conflicts"], serde_json::json!(["shared.txt"]));
    // ... and resolving the worktree edit clears that one.
    std::fs::write(env.path_of("dirty").join("shared.txt"), "one\ntwo\nthree\n").expect("write");
    let r = report(&env);
    assert!(pair(&r, "left", "dirty").is_none(), "{r}");

    // The base moving on: left would now conflict with main.
    commit(&env, &env.repo, "shared.txt", "one\nMAIN\nthree\n", "main edit");
    let r = report(&env);
    assert_eq!(session(&r, "left")["base_conflicts"], serde_json::json!(["shared.txt"]));
    assert!(env.ok(&["conflicts"]).contains("left → main"));
}
