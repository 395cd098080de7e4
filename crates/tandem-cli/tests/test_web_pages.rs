//! `tandem serve`'s new-session form, tasks and conflict matrix (issue
//! 20): their pages are served with the shared nav, and their API answers
//! what the CLI answers — `new` makes the same session and refuses with
//! the same words, `task show --json`, `task promote` and
//! `conflicts --json` are the same objects.

use std::path::Path;

use serde_json::json;

use crate::common::TestEnv;
use crate::common::web::Serve;

fn commit(env: &TestEnv, wt: &Path, file: &str, text: &str) {
    env.commit_in(wt, file, text, &format!("change {file}"));
}

/// The test repository's id in `/api/repos`.
fn repo_id(web: &Serve, env: &TestEnv) -> i64 {
    let repos = web.get_json("/api/repos");
    let want = std::fs::canonicalize(&env.repo).expect("repo");
    let repo = repos
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["root"].as_str().and_then(|p| std::fs::canonicalize(p).ok()) == Some(want.clone()))
        .unwrap_or_else(|| panic!("the test repository is not in /api/repos: {repos}"));
    assert_eq!(repo["name"], "repo", "{repo}");
    repo["id"].as_i64().expect("id")
}

/// What `tandem ARGS` says failing, without `error: ` (hints after `; `).
fn cli_error(env: &TestEnv, args: &[&str]) -> String {
    let said = env.fails(args);
    said.strip_prefix("error: ").unwrap_or(&said).to_owned()
}

fn names(env: &TestEnv) -> Vec<String> {
    env.sessions().iter().filter_map(|s| s["name"].as_str().map(str::to_owned)).collect()
}

#[test]
fn pages_are_served_with_the_nav_and_their_scripts() {
    let env = TestEnv::new();
    let web = Serve::start(&env);
    for (path, script) in
        [("/new", "new.js"), ("/tasks", "tasks.js"), ("/tasks/1/some-task", "task.js"), ("/conflicts", "conflicts.js")]
    {
        let page = web.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(page.header("content-security-policy").is_some(), "{path} has a CSP");
        let html = page.text;
        assert!(html.contains("<header class=\"top\">"), "{path}: {html}");
        for link in ["href=\"/\"", "href=\"/new\"", "href=\"/tasks\"", "href=\"/conflicts\""] {
            assert!(html.contains(link), "{path} links {link}: {html}");
        }
        assert!(html.contains("/assets/common.js") && html.contains(&format!("/assets/{script}")), "{html}");
        assert_eq!(web.get(&format!("/assets/{script}")).status, 200, "{script}");
    }
    assert_eq!(web.get("/assets/pages.css").status, 200);
}

#[test]
fn the_new_session_form_makes_the_session_tandem_list_shows() {
    let env = TestEnv::new();
    let web = Serve::start(&env);
    let root = env.repo.display().to_string();
    let made = web.request(
        "POST",
        "/api/sessions",
        Some(&json!({"repo": root, "name": "from-web", "agent": "shell", "base": "head", "prompt": "", "sandbox": ""})),
    );
    assert_eq!(made.status, 200, "{}", made.text);
    let made = made.json();
    assert_eq!(made["session"]["name"], "from-web", "{made}");
    let listed = env.session("from-web");
    assert_eq!(made["id"], listed["id"], "{made} / {listed}");
    assert_eq!(made["session"]["branch"], listed["branch"]);
    assert_eq!(listed["agent"], "shell");
    // Its branch starts at HEAD, as `--base head` asks.
    let branch = listed["branch"].as_str().expect("branch");
    assert_eq!(env.git(&["rev-parse", branch]), env.git(&["rev-parse", "HEAD"]));
}

#[test]
fn bad_agent_taken_name_and_bad_base_are_refused_with_the_cli_words_and_nothing_made() {
    let env = TestEnv::new();
    let web = Serve::start(&env);
    env.ok(&["new", "--bg", "--agent", "shell", "--base", "head", "taken"]);
    let root = env.repo.display().to_string();
    let cases = [
        (
            json!({"repo": root, "name": "x1", "agent": "no-such-agent-here", "base": "head"}),
            400,
            vec!["new", "--bg", "--agent", "no-such-agent-here", "--base", "head", "x1"],
        ),
        (
            json!({"repo": root, "name": "taken", "agent": "shell", "base": "head"}),
            409,
            vec!["new", "--bg", "--agent", "shell", "--base", "head", "taken"],
        ),
        (
            json!({"repo": root, "name": "x2", "agent": "shell", "base": "no-such-ref"}),
            400,
            vec!["new", "--bg", "--agent", "shell", "--base", "no-such-ref", "x2"],
        ),
    ];
    for (body, status, cli) in cases {
        let answer = web.request("POST", "/api/sessions", Some(&body));
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        let said = answer.json()["error"].as_str().expect("an error").to_owned();
        let cli_said = cli_error(&env, &cli);
        assert!(!said.is_empty() && cli_said.starts_with(&said), "API: {said}\nCLI: {cli_said}");
    }
    assert_eq!(names(&env), ["taken"], "nothing made");
    // Another site's page cannot make one with the browser's cookie.
    let cookie = format!("tandem_token={}", web.token);
    let body =
        serde_json::to_vec(&json!({"repo": root, "name": "x4", "agent": "shell", "base": "head"})).expect("json");
    let headers =
        [("Cookie", cookie.as_str()), ("Origin", "http://evil.example"), ("Content-Type", "application/json")];
    let refused = web.raw("POST", "/api/sessions", &headers, Some(&body));
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(names(&env), ["taken"], "nothing made");
    let bad = web.request("POST", "/api/sessions", Some(&json!({"name": "x3"})));
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.json()["error"].as_str().unwrap_or_default().contains("send JSON like"), "{}", bad.text);
    let bad =
        web.request("POST", "/api/sessions", Some(&json!({"repo": env.tmp.path().join("nowhere"), "agent": "shell"})));
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.json()["error"].as_str().unwrap_or_default().contains("is not a folder"), "{}", bad.text);
    assert_eq!(names(&env), ["taken"], "nothing made");
}

#[test]
fn a_task_over_the_api_is_task_show_json_its_diff_and_promote() {
    let env = TestEnv::new();
    env.ok(&[
        "task",
        "new",
        "Write done.txt saying ok",
        "--name",
        "greet",
        "--trials",
        "2",
        "--agents",
        "shell",
        "--base",
        "head",
        "--check",
        "grep -q ok done.txt",
    ]);
    commit(&env, &env.path_of("greet-t1"), "done.txt", "ok\n");
    commit(&env, &env.path_of("greet-t2"), "done.txt", "not yet\n");
    let web = Serve::start(&env);
    let id = repo_id(&web, &env);

    let listed = web.get_json(&format!("/api/tasks?repo={}", env.repo.display()));
    let tasks = &listed["repos"][0]["tasks"];
    let cli_tasks: serde_json::Value = serde_json::from_str(&env.ok(&["task", "list", "--json"])).expect("json");
    assert_eq!(tasks, &cli_tasks, "{listed}");
    assert_eq!(listed["repos"][0]["id"], id);

    // The CLI runs the check and keeps the results; the API shows the
    // same object (time worked aside: it counts on while trials run).
    let cli: serde_json::Value = serde_json::from_str(&env.ok(&["task", "show", "greet", "--json"])).expect("json");
    let api = web.get_json(&format!("/api/tasks/{id}/greet"));
    let without_time = |mut v: serde_json::Value| {
        for t in v["trials"].as_array_mut().expect("trials") {
            t.as_object_mut().expect("trial").remove("duration_secs");
        }
        v
    };
    assert_eq!(without_time(api.clone()), without_time(cli), "{api}");
    assert_eq!(api["trials"][0]["check"]["passed"], true, "{api}");
    assert_eq!(api["trials"][1]["check"]["passed"], false, "{api}");
    assert_eq!(api["trials"][0]["id"], env.session("greet-t1")["id"]);

    // A new state has no result: without `no_check` the API runs the
    // check, and the supervisor keeps it for the CLI.
    std::fs::write(env.path_of("greet-t2").join("done.txt"), "ok now\n").expect("write");
    let unchecked = web.get_json(&format!("/api/tasks/{id}/greet?no_check=1"));
    assert_eq!(unchecked["trials"][1]["check"], serde_json::Value::Null, "{unchecked}");
    let checked = web.get_json(&format!("/api/tasks/{id}/greet"));
    assert_eq!(checked["trials"][1]["check"]["passed"], true, "{checked}");
    let cli: serde_json::Value =
        serde_json::from_str(&env.ok(&["task", "show", "greet", "--json", "--no-check"])).expect("json");
    assert_eq!(cli["trials"][1]["check"]["passed"], true, "kept: {cli}");

    let diff = web.get_json(&format!("/api/tasks/{id}/greet/diff?a=1&b=t2"));
    assert_eq!(diff["files"][0]["path"], "done.txt", "{diff}");
    let patch = diff["patch"].as_str().expect("patch");
    assert!(patch.contains("-ok") && patch.contains("+ok now"), "{patch}");
    let bad = web.get(&format!("/api/tasks/{id}/greet/diff?a=1&b=7"));
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.json()["error"].as_str().unwrap_or_default().contains("task `greet` has no trial `7`"), "{}", bad.text);
    assert_eq!(web.get(&format!("/api/tasks/{id}/nope")).status, 404);

    let promoted = web.request("POST", &format!("/api/tasks/{id}/greet/promote"), Some(&json!({"trial": 1})));
    assert_eq!(promoted.status, 200, "{}", promoted.text);
    let promoted = promoted.json();
    assert_eq!((promoted["ok"].as_bool(), promoted["promoted"].as_str()), (Some(true), Some("greet-t1")), "{promoted}");
    assert_eq!(promoted["branch"], "greet/result");
    assert_eq!(promoted["archived"], json!(["greet-t2"]));
    assert_eq!(env.session("greet-t1")["branch"], "greet/result");
    let archived: Vec<String> = env.archived().iter().filter_map(|s| s["name"].as_str().map(str::to_owned)).collect();
    assert_eq!(archived, ["greet-t2"]);
    let again = web.request("POST", &format!("/api/tasks/{id}/greet/promote"), Some(&json!({"trial": "2"})));
    assert_eq!(again.status, 409, "{}", again.text);
    let cli_said = cli_error(&env, &["task", "promote", "greet", "2"]);
    let said = again.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(said.contains("task `greet` already promoted greet-t1") && cli_said.starts_with(&said), "{said}");
}

#[test]
fn two_sessions_editing_one_file_conflict_in_the_api_as_in_tandem_conflicts() {
    let env = TestEnv::new();
    env.ok(&["new", "--bg", "--agent", "shell", "--base", "head", "left"]);
    env.ok(&["new", "--bg", "--agent", "shell", "--base", "head", "right"]);
    commit(&env, &env.path_of("left"), "README.md", "# left\n");
    commit(&env, &env.path_of("right"), "README.md", "# right\n");
    let web = Serve::start(&env);
    let api = web.get_json(&format!("/api/conflicts?repo={}", env.repo.display()));
    let cli: serde_json::Value = serde_json::from_str(&env.ok(&["conflicts", "--json"])).expect("json");
    assert_eq!(api, cli);
    let pair = &api["pairs"][0];
    let mut who = [pair["a"].as_str().unwrap_or_default(), pair["b"].as_str().unwrap_or_default()];
    who.sort_unstable();
    assert_eq!(who, ["left", "right"], "{api}");
    assert_eq!(pair["conflicts"], json!(["README.md"]), "{api}");
    let missing = web.get("/api/conflicts");
    assert_eq!(missing.status, 400, "{}", missing.text);
}
