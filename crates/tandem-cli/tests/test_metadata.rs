//! Session metadata (issue 4, "Living"): title, priority, task status and
//! pin; `tandem list` filters and sorts; `tandem path`.

use crate::common::TestEnv;

fn names(sessions: &[serde_json::Value]) -> Vec<String> {
    sessions.iter().map(|s| s["name"].as_str().expect("name").to_owned()).collect()
}

fn list_names(env: &TestEnv, args: &[&str]) -> Vec<String> {
    let mut full = vec!["list", "--json"];
    full.extend(args);
    names(serde_json::from_str::<serde_json::Value>(&env.ok(&full)).expect("json").as_array().expect("array"))
}

#[test]
fn titles_priorities_statuses_and_pins_are_set_listed_filtered_and_sorted() {
    let env = TestEnv::new();
    env.ok(&["new", "alpha", "--bg", "--agent", "shell", "--title", "Fix the login redirect"]);
    env.ok(&["new", "beta", "--bg", "--agent", "shell"]);
    env.ok(&["new", "gamma", "--bg", "--agent", "shell"]);

    let alpha = env.session("alpha");
    assert_eq!(alpha["title"], "Fix the login redirect");
    assert_eq!(
        (alpha["priority"].as_str(), alpha["status"].as_str(), alpha["pinned"].as_bool()),
        (Some("none"), Some("in-progress"), Some(false))
    );

    let out = env.ok(&["set", "gamma", "--priority", "urgent", "--status", "in-review", "--pin"]);
    assert!(out.contains("priority urgent, status in-review, pinned"), "{out}");
    env.ok(&["set", "beta", "--priority", "high", "--title", "Speed up list"]);
    let gamma = env.session("gamma");
    assert_eq!(
        (gamma["priority"].as_str(), gamma["status"].as_str(), gamma["pinned"].as_bool()),
        (Some("urgent"), Some("in-review"), Some(true))
    );

    // Pinned first, then oldest first; or by priority, name, newest.
    assert_eq!(list_names(&env, &[]), ["gamma", "alpha", "beta"]);
    assert_eq!(list_names(&env, &["--sort", "priority"]), ["gamma", "beta", "alpha"]);
    assert_eq!(list_names(&env, &["--sort", "name"]), ["gamma", "alpha", "beta"]);
    env.ok(&["set", "gamma", "--unpin"]);
    assert_eq!(list_names(&env, &["--sort", "name"]), ["alpha", "beta", "gamma"]);
    assert_eq!(list_names(&env, &["--sort", "age"]).last().map(String::as_str), Some("alpha"));

    // Filters.
    assert_eq!(list_names(&env, &["--status", "in-review"]), ["gamma"]);
    assert_eq!(list_names(&env, &["--priority", "urgent,high", "--sort", "name"]), ["beta", "gamma"]);
    env.ok(&["set", "alpha", "--pin"]);
    assert_eq!(list_names(&env, &["--pinned"]), ["alpha"]);

    // The table shows them.
    let table = env.ok(&["list"]);
    let header = table.lines().next().expect("header");
    for column in ["TITLE", "STATUS", "PRIORITY"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        table.contains("alpha (pinned)") && table.contains("Fix the login redirect") && table.contains("urgent"),
        "{table}"
    );

    // An empty title clears it.
    env.ok(&["set", "alpha", "--title", ""]);
    assert!(env.session("alpha")["title"].is_null());
}

#[test]
fn unknown_priorities_statuses_and_sorts_are_refused_and_change_nothing() {
    let env = TestEnv::new();
    env.ok(&["new", "meta", "--bg", "--agent", "shell"]);
    let before = env.session("meta");
    let err = env.fails(&["set", "meta", "--priority", "someday", "--pin"]);
    assert!(err.contains("unknown priority `someday`; use one of urgent, high, medium, low, none"), "{err}");
    let err = env.fails(&["set", "meta", "--status", "wip"]);
    assert!(err.contains("unknown status `wip`; use one of backlog, in-progress, in-review, done, cancelled"), "{err}");
    let err = env.fails(&["set", "meta"]);
    assert!(err.contains("nothing to set"), "{err}");
    let err = env.fails(&["set", "ghost", "--pin"]);
    assert!(err.contains("no session named `ghost`"), "{err}");
    let after = env.session("meta");
    for key in ["priority", "status", "pinned", "title"] {
        assert_eq!(before[key], after[key], "{key}");
    }
    let err = env.fails(&["list", "--status", "wip"]);
    assert!(err.contains("unknown status `wip`"), "{err}");
    let err = env.fails(&["list", "--sort", "size"]);
    assert!(err.contains("unknown sort `size`"), "{err}");
}

#[test]
fn path_prints_the_worktree() {
    let env = TestEnv::new();
    let out = env.ok(&["new", "where", "--bg", "--agent", "shell"]);
    let path = out.trim().split_once('\t').expect("name and path").1.to_owned();
    assert_eq!(env.ok(&["path", "where"]).trim(), path);
    let err = env.fails(&["path", "nowhere"]);
    assert!(err.contains("no session named `nowhere`"), "{err}");
}
