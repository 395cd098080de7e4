//! Issue 23, the inotify budget: the supervisor holds at most `[watch]
//! max_watches` watches; a worktree that does not fit is polled (its
//! facts read with git on every `list`, never served stale), says so in
//! `list --json` (`facts`) and in `doctor`, and is watched once a removed
//! session frees room.

use std::path::Path;

use crate::common::{TestEnv, stdout, wait_for};

/// A repository with four folders besides its root: a worktree of it
/// takes six watches (five folders and its admin folder in `.git`).
fn four_folders() -> TestEnv {
    let env = TestEnv::new();
    for d in ["d1", "d2", "d3", "d4"] {
        std::fs::create_dir_all(env.repo.join(d)).expect("mkdir");
        std::fs::write(env.repo.join(d).join("f.txt"), format!("{d}\n")).expect("write");
    }
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "four folders"]);
    env
}

fn row(env: &TestEnv, name: &str) -> serde_json::Value {
    env.session(name)
}

fn doctor(env: &TestEnv) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["doctor", "--json"])).expect("doctor --json is JSON")
}

fn edit(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

#[test]
fn a_worktree_beyond_the_watch_cap_is_polled_and_list_stays_correct() {
    let env = four_folders();
    // The repository's `info/` (1) and one worktree (6) fit in 10; a
    // second worktree does not.
    env.user_config("[watch]\nmax_watches = 10\n[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    wait_for("a's worktree watched", || (row(&env, "a")["facts"] == "watched").then_some(()));
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    let report =
        wait_for("b polled", || Some(doctor(&env)).filter(|d| d["watches"]["polled"] == serde_json::json!(["b"])));
    assert_eq!(report["watches"]["cap"], 10, "{report}");
    let used = report["watches"]["used"].as_u64().expect("used");
    assert!(used <= 10, "the cap holds: {report}");
    assert_eq!(used, 7, "b gave back the watches it got: {report}");
    assert_eq!(row(&env, "b")["facts"], "polled");
    assert_eq!(row(&env, "a")["facts"], "watched");
    let text = stdout(&env.tandem(&["doctor"]));
    assert!(text.contains("1 worktree is polled") && text.contains("polled: b"), "{text}");
    assert!(text.contains("max_watches"), "doctor names the setting: {text}");

    // Edits in the polled worktree show at once, each time.
    let b = env.path_of("b");
    edit(&b.join("d3/f.txt"), "changed\n");
    let now = row(&env, "b");
    assert_eq!((now["changed"].as_u64(), now["untracked"].as_u64()), (Some(1), Some(0)), "{now}");
    edit(&b.join("d4/new.txt"), "new\n");
    let now = row(&env, "b");
    assert_eq!((now["changed"].as_u64(), now["untracked"].as_u64()), (Some(1), Some(1)), "{now}");
    env.git_in(&b, &["checkout", "-q", "--", "d3/f.txt"]);
    let now = row(&env, "b");
    assert_eq!((now["changed"].as_u64(), now["untracked"].as_u64()), (Some(0), Some(1)), "{now}");
    assert_eq!(now["facts"], "polled", "{now}");
    // And in the watched one.
    let a = env.path_of("a");
    edit(&a.join("d1/f.txt"), "changed\n");
    assert_eq!(row(&env, "a")["changed"].as_u64(), Some(1));

    // Removing `a` frees its watches: `b` is watched, and stays correct.
    env.ok(&["rm", "--force", "a"]);
    wait_for("b watched once a is gone", || (row(&env, "b")["facts"] == "watched").then_some(()));
    assert_eq!(doctor(&env)["watches"]["polled"], serde_json::json!([]));
    edit(&b.join("d2/f.txt"), "changed too\n");
    let now = row(&env, "b");
    assert_eq!((now["changed"].as_u64(), now["untracked"].as_u64()), (Some(1), Some(1)), "{now}");
}

#[test]
fn a_new_folder_that_does_not_fit_turns_a_watched_worktree_to_polled() {
    let env = four_folders();
    env.user_config("[watch]\nmax_watches = 8\n[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    wait_for("a's worktree watched", || (row(&env, "a")["facts"] == "watched").then_some(()));
    // Two new folders: the first fits (8 of 8), the second does not.
    let a = env.path_of("a");
    std::fs::create_dir_all(a.join("n1/n2")).expect("mkdir");
    edit(&a.join("n1/n2/x.txt"), "x\n");
    let now = row(&env, "a");
    assert_eq!(now["untracked"].as_u64(), Some(1), "{now}");
    assert_eq!(now["facts"], "polled", "{now}");
    let report = doctor(&env);
    assert_eq!(report["watches"]["polled"], serde_json::json!(["a"]), "{report}");
    // The watches go back as the watcher thread lets them go, just after.
    wait_for("a to give back its watches", || {
        doctor(&env)["watches"]["used"].as_u64().is_some_and(|u| u <= 1).then_some(())
    });
    // Still correct without watches.
    edit(&a.join("n1/n2/y.txt"), "y\n");
    assert_eq!(row(&env, "a")["untracked"].as_u64(), Some(1), "n1/ is one untracked folder: {}", row(&env, "a"));
    edit(&a.join("d1/f.txt"), "changed\n");
    assert_eq!(row(&env, "a")["changed"].as_u64(), Some(1));
}

#[test]
fn conflicts_after_a_restart_watches_the_worktrees_of_stopped_agents() {
    let env = four_folders();
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    edit(&env.path_of("a").join("d1/f.txt"), "dirty\n");
    env.ok(&["stop", "a"]);
    env.ok(&["daemon", "stop"]);
    // Only conflict control looks at the worktree after the restart: its
    // snapshot can be reused only once the worktree is watched.
    env.ok(&["conflicts"]);
    let status = wait_for("a's worktree watched after `conflicts`", || {
        let status: serde_json::Value =
            serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).expect("daemon status --json is JSON");
        // The repository's info/ (1), five folders and the admin folder.
        (status["watches"]["used"].as_u64() == Some(7)).then_some(status)
    });
    assert_eq!(status["watches"]["polled"], serde_json::json!([]), "{status}");
}
