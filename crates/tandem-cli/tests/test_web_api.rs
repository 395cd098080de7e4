//! `tandem serve`'s session actions (issue 20): `POST
//! /api/sessions/{id}/{action}` does what the CLI command does, through
//! the same core calls, and refuses with the CLI's own words; the
//! dashboard page is served under a Content-Security-Policy. Each test
//! runs the real binary's server against a real supervisor and agents
//! (a shell; a stand-in named `claude` for what only an agent that
//! reports its state allows), over plain HTTP.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::common::web::Serve;
use crate::common::{PROMPT, TestEnv, hook_event, wait_for, wait_within};

/// A shell session `name`, its prompt shown; answers its id.
fn shell(env: &TestEnv, name: &str) -> String {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    wait_for("the shell's prompt", || env.ok(&["logs", name]).contains(PROMPT).then_some(()));
    id_of(env, name)
}

fn id_of(env: &TestEnv, name: &str) -> String {
    env.session(name)["id"].as_str().expect("id").to_owned()
}

/// The CLI's error line without `error: `: what the API must answer.
fn cli_error(env: &TestEnv, args: &[&str]) -> String {
    let line = env.fails(args);
    line.strip_prefix("error: ").unwrap_or(&line).to_owned()
}

/// A stand-in for Claude Code: a program named `claude` (so tandem takes
/// it for Claude Code, whose hooks report its state) that ignores
/// Claude's options and runs a shell. Put first on the agents' PATH.
fn fake_claude(env: &mut TestEnv) {
    let dir: PathBuf = env.tmp.path().join("fake-bin");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let script = dir.join("claude");
    std::fs::write(&script, "#!/bin/bash\nexec bash --norc -i\n").expect("write");
    let mut perms = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    env.env.push(("PATH".to_owned(), format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display())));
}

#[test]
fn dashboard_page_is_served_with_a_content_security_policy() {
    let env = TestEnv::new();
    let serve = Serve::start(&env);
    let page = serve.get("/");
    assert_eq!(page.status, 200, "{}", page.text);
    let csp = page.header("content-security-policy").expect("a Content-Security-Policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    for part in [r#"id="filter""#, r#"id="toast""#, r#"id="conn""#, r#"href="/new""#, r#"href="/conflicts""#] {
        assert!(page.text.contains(part), "the page has {part}: {}", page.text);
    }
    let script = serve.get("/assets/dashboard.js");
    assert_eq!(script.status, 200);
    assert!(script.text.contains("tandem-first-render"), "the script marks its first render");
    assert!(!script.text.contains("innerHTML"), "no innerHTML in the dashboard");
}

#[test]
fn send_reaches_a_running_agent_and_an_empty_one_is_refused() {
    let env = TestEnv::new();
    let id = shell(&env, "alpha");
    let serve = Serve::start(&env);

    let done = serve.act(&id, "send", &json!({ "text": "echo web-sent-$((6*7))" }));
    assert_eq!(done.status, 200, "{}", done.text);
    let answer = done.json();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["message"], "sent a prompt of 2 word(s) to session alpha");
    assert_eq!(answer["session"]["name"], "alpha", "{answer}");
    wait_for("the prompt's output", || env.ok(&["logs", "alpha"]).contains("web-sent-42").then_some(()));

    let empty = serve.act(&id, "send", &json!({ "text": "  " }));
    assert_eq!(empty.status, 400, "{}", empty.text);
    assert_eq!(empty.json()["error"], cli_error(&env, &["send", "alpha", " "]));
}

#[test]
fn interrupt_then_stop_and_what_a_stopped_session_refuses() {
    let env = TestEnv::new();
    let id = shell(&env, "alpha");
    let serve = Serve::start(&env);

    assert_eq!(serve.act(&id, "send", &json!({ "text": "sleep 600" })).status, 200);
    wait_for("the sleep to start", || env.ok(&["logs", "alpha"]).contains("sleep 600").then_some(()));
    let interrupted = serve.act(&id, "interrupt", &json!({}));
    assert_eq!(interrupted.status, 200, "{}", interrupted.text);
    assert_eq!(interrupted.json()["message"], "interrupted the turn of session alpha; its agent keeps running");
    // Only an interrupted sleep lets the next line run.
    assert_eq!(serve.act(&id, "send", &json!({ "text": "echo after-$((1+1))" })).status, 200);
    wait_within("the line after the interrupt", Duration::from_secs(20), || {
        env.ok(&["logs", "alpha"]).contains("after-2").then_some(())
    });

    let stopped = serve.act(&id, "stop", &json!({}));
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    let message = stopped.json()["message"].as_str().expect("message").to_owned();
    assert!(message.starts_with("stopped session alpha; its worktree stays at "), "{message}");
    env.wait_state("alpha", "stopped");
    let again = serve.act(&id, "stop", &json!({})).json();
    assert_eq!(again["message"], "session alpha is not running (stopped)");

    let refused = serve.act(&id, "interrupt", &json!({}));
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.json()["error"], cli_error(&env, &["interrupt", "alpha"]));

    // Respawned: running again, in the same worktree.
    let respawned = serve.act(&id, "respawn", &json!({}));
    assert_eq!(respawned.status, 200, "{}", respawned.text);
    assert_eq!(respawned.json()["message"], "respawned session alpha");
    env.wait_state("alpha", "running");
}

#[test]
fn fork_makes_a_session_from_the_current_state_and_refuses_a_bad_name() {
    let env = TestEnv::new();
    let id = shell(&env, "alpha");
    std::fs::write(env.path_of("alpha").join("wip.txt"), "work in progress\n").expect("write");
    let serve = Serve::start(&env);

    let bad = serve.act(&id, "fork", &json!({ "name": "!!!" }));
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.json()["error"], cli_error(&env, &["fork", "alpha", "!!!"]));

    let forked = serve.act(&id, "fork", &json!({ "name": "alpha-copy" }));
    assert_eq!(forked.status, 200, "{}", forked.text);
    let answer = forked.json();
    assert_eq!(answer["message"], "forked session alpha as alpha-copy");
    assert_eq!(answer["created"]["name"], "alpha-copy", "{answer}");
    assert_eq!(answer["session"]["name"], "alpha", "{answer}");
    let copy = env.path_of("alpha-copy");
    assert_eq!(std::fs::read_to_string(copy.join("wip.txt")).expect("the fork has the work"), "work in progress\n");
}

#[test]
fn approve_and_deny_answer_what_the_agent_asks_and_are_refused_when_it_asks_nothing() {
    let mut env = TestEnv::new();
    fake_claude(&mut env);
    env.ok(&["new", "asker", "--bg", "--agent", "claude"]);
    let id = id_of(&env, "asker");
    let serve = Serve::start(&env);

    let refused = serve.act(&id, "approve", &json!({}));
    assert_eq!(refused.status, 409, "{}", refused.text);
    let cli = cli_error(&env, &["approve", "asker"]);
    assert!(cli.contains("is not waiting for a permission decision"), "{cli}");
    assert_eq!(refused.json()["error"], cli);

    let ask = |command: &str| {
        let asked = json!({
            "hook_event_name": "PermissionRequest",
            "tool_name": "Bash",
            "tool_input": { "command": command },
        });
        hook_event(&env, &id, &asked);
    };
    ask("cargo test");
    // The dashboard's rows say what it asks, in the needs-input group.
    let row = wait_for("the ask in the rows", || {
        let rows = serve.get("/api/sessions").json();
        let row = rows["repos"][0]["sessions"].as_array()?.iter().find(|s| s["id"] == id.as_str())?.clone();
        (row["group"] == "needs_input").then_some(row)
    });
    assert_eq!(row["asking"], "Bash: cargo test", "{row}");
    assert_eq!(row["awaits_permission"], true, "{row}");

    let approved = serve.act(&id, "approve", &json!({}));
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.json()["session"]["asking"], serde_json::Value::Null, "{}", approved.text);
    let history = env.ok(&["history", "asker"]);
    assert!(history.contains("approved: Bash: cargo test"), "{history}");

    ask("rm -rf target");
    wait_for("the second ask", || (env.session("asker")["asking"] == "Bash: rm -rf target").then_some(()));
    let denied = serve.act(&id, "deny", &json!({ "message": "keep the build" }));
    assert_eq!(denied.status, 200, "{}", denied.text);
    let history = env.ok(&["history", "asker"]);
    assert!(history.contains("denied: Bash: rm -rf target"), "{history}");
}

#[test]
fn remove_refuses_unsaved_work_in_the_clis_words_then_force_keeps_a_snapshot() {
    let env = TestEnv::new();
    let id = shell(&env, "doomed");
    let path = env.path_of("doomed");
    std::fs::write(path.join("precious.txt"), "keep me\n").expect("write");
    let serve = Serve::start(&env);
    wait_for("the untracked file in the row", || (env.session("doomed")["untracked"] == 1).then_some(()));

    let cli = cli_error(&env, &["rm", "doomed"]);
    let before = env.repo_state();
    let refused = serve.act(&id, "remove", &json!({}));
    assert_eq!(refused.status, 409, "{}", refused.text);
    let answer = refused.json();
    assert_eq!(answer["error"], cli, "the CLI's refusal sentence");
    assert_eq!(answer["unsaved"], "1 untracked file", "{answer}");
    assert_eq!(env.repo_state(), before, "nothing changed");
    assert!(path.join("precious.txt").exists(), "nothing removed");
    assert_eq!(env.session("doomed")["name"], "doomed");

    let removed = serve.act(&id, "remove", &json!({ "force": true }));
    assert_eq!(removed.status, 200, "{}", removed.text);
    let answer = removed.json();
    assert_eq!(answer["session"], serde_json::Value::Null, "{answer}");
    assert!(answer["message"].as_str().expect("message").contains("snapshot kept at refs/tandem/archive/doomed/"));
    let refs = env.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/archive/doomed/"]);
    assert!(!refs.trim().is_empty(), "the snapshot ref exists");
    let list = env.ok(&["list", "--json"]);
    assert!(!list.contains("\"doomed\""), "{list}");
}

#[test]
fn archive_and_restore_round_trip() {
    let env = TestEnv::new();
    let id = shell(&env, "shelf");
    let path = env.path_of("shelf");
    std::fs::write(path.join("draft.txt"), "half done\n").expect("write");
    let serve = Serve::start(&env);

    let archived = serve.act(&id, "archive", &json!({}));
    assert_eq!(archived.status, 200, "{}", archived.text);
    let answer = archived.json();
    assert!(answer["message"].as_str().expect("message").starts_with("archived session shelf (branch shelf kept)"));
    assert_eq!(answer["session"]["state"], "archived", "{answer}");
    assert!(!path.exists(), "the worktree is gone");

    let restored = serve.act(&id, "restore", &json!({}));
    assert_eq!(restored.status, 200, "{}", restored.text);
    let answer = restored.json();
    assert!(answer["message"].as_str().expect("message").starts_with("restored session shelf in "), "{answer}");
    assert_eq!(std::fs::read_to_string(path.join("draft.txt")).expect("the work is back"), "half done\n");
    env.wait_state("shelf", "running");
}

#[test]
fn an_unknown_session_or_action_is_404_and_a_bad_body_400() {
    let env = TestEnv::new();
    let id = shell(&env, "alpha");
    let serve = Serve::start(&env);

    let unknown = serve.act("0123456789ab", "stop", &json!({}));
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(unknown.json()["error"].as_str().expect("error").contains("no session with id `0123456789ab`"));
    let action = serve.act(&id, "explode", &json!({}));
    assert_eq!(action.status, 404, "{}", action.text);
    assert!(action.json()["error"].as_str().expect("error").contains("no action `explode`"));
    let bad = serve.act(&id, "send", &json!({ "txet": "typo" }));
    assert_eq!(bad.status, 400, "{}", bad.text);
    // Nothing was done to the session.
    assert_eq!(env.session("alpha")["state"], "running");
}

#[test]
fn merge_and_sync_land_work_and_refuse_in_the_clis_words() {
    let env = TestEnv::new();
    let commit =
        |name: &str, file: &str, text: &str| env.commit_in(&env.path_of(name), file, text, &format!("{name}: {file}"));
    env.ok(&["new", "feature", "--bg", "--agent", "shell", "--base", "head"]);
    env.ok(&["new", "behind", "--bg", "--agent", "shell", "--base", "head"]);
    commit("feature", "feature.txt", "feature\n");
    let (feature, behind) = (id_of(&env, "feature"), id_of(&env, "behind"));
    let serve = Serve::start(&env);

    // A dirty target: refused as `tandem merge` refuses, nothing moves.
    std::fs::write(env.repo.join("README.md"), "# local edit\n").expect("write");
    let main = env.git(&["rev-parse", "main"]);
    let cli = cli_error(&env, &["merge", "feature"]);
    let refused = serve.act(&feature, "merge", &json!({}));
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.json()["error"], cli);
    assert_eq!(env.git(&["rev-parse", "main"]), main);
    env.git(&["checkout", "--", "README.md"]);

    let merged = serve.act(&feature, "merge", &json!({}));
    assert_eq!(merged.status, 200, "{}", merged.text);
    let message = merged.json()["message"].as_str().expect("message").to_owned();
    assert!(message.starts_with("merged feature into main (now "), "{message}");
    assert!(env.repo.join("feature.txt").exists(), "the main worktree has it");
    let history = env.ok(&["history", "feature"]);
    assert!(history.contains("merged feature into main"), "the supervisor recorded it: {history}");

    // `behind` brings main's new commit in.
    let synced = serve.act(&behind, "sync", &json!({}));
    assert_eq!(synced.status, 200, "{}", synced.text);
    let message = synced.json()["message"].as_str().expect("message").to_owned();
    assert!(message.starts_with("behind rebased onto main (2 new commits)"), "{message}");
    assert!(env.path_of("behind").join("feature.txt").exists());
    let bad = serve.act(&behind, "sync", &json!({ "mode": "sideways" }));
    assert_eq!(bad.status, 400, "{}", bad.text);
}

/// The dashboard's rows are pushed, not polled: a change (an agent asking
/// for a permission) reaches an open event stream at once (issue 20: the
/// page within 200 ms; allowed more here, on a loaded test machine).
#[test]
fn a_change_is_pushed_on_the_event_stream_at_once() {
    let mut env = TestEnv::new();
    fake_claude(&mut env);
    env.ok(&["new", "alpha", "--bg", "--agent", "claude"]);
    let id = id_of(&env, "alpha");
    let serve = Serve::start(&env);
    let events = serve.events();
    let first = events.recv_timeout(Duration::from_secs(20)).expect("the rows at once");
    assert_eq!(first["repos"][0]["sessions"][0]["name"], "alpha", "{first}");

    let asked =
        json!({ "hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": { "command": "make" } });
    hook_event(&env, &id, &asked);
    let recorded = std::time::Instant::now();
    loop {
        let left = Duration::from_secs(20).saturating_sub(recorded.elapsed());
        let rows = events.recv_timeout(left).expect("a push after the change");
        let row = &rows["repos"][0]["sessions"][0];
        if row["group"] == "needs_input" {
            assert_eq!(row["asking"], "Bash: make", "{row}");
            break;
        }
    }
    let took = recorded.elapsed();
    crate::common::note(&format!("the change was pushed {} ms after it was recorded", took.as_millis()));
    assert!(took < Duration::from_secs(1), "pushed after {took:?}");
}

/// Issue 21, with a real host (`common::sshd`): the rows the server
/// pushes carry the remote host's live sessions in `remote.sessions`,
/// each with its `host`, beside the local repository's; a session made
/// there after the server started shows up on the server's own timer.
#[test]
fn sessions_carry_a_remote_hosts_live_rows() {
    let mut env = TestEnv::new();
    let Some(sshd) = crate::common::sshd::Sshd::start(&mut env) else { return };
    let host = sshd.install_tandem(&env);
    env.ok(&["new", "here", "--agent", "shell", "--bg"]);
    let serve = Serve::start(&env);
    let remote_names = || -> Vec<(String, String)> {
        let snapshot = serve.get_json("/api/sessions");
        snapshot["remote"]["sessions"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        (r["host"].as_str().unwrap_or("?").to_owned(), r["name"].as_str().unwrap_or("?").to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(remote_names().is_empty(), "nothing on the host yet");
    // Made on the host (the local supervisor has no part in it).
    env.ok(&["new", "--on", host, "job", "--agent", "shell", "--bg"]);
    wait_within("the host's session in the pushed rows", Duration::from_secs(30), || {
        remote_names().contains(&(host.to_owned(), "job".to_owned())).then_some(())
    });
    let snapshot = serve.get_json("/api/sessions");
    assert_eq!(snapshot["repos"][0]["sessions"][0]["name"], "here", "{snapshot}");
    assert_eq!(snapshot["remote"]["notes"], json!([]), "{snapshot}");
}
