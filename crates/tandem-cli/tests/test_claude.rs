//! End to end with the real Claude Code CLI (npm `@anthropic-ai/claude-code`)
//! in its interactive TUI, against a scripted stand-in for the Anthropic
//! Messages API on 127.0.0.1 (`common::anthropic`).
//!
//! Skipped with a printed reason only when the CLI is absent and
//! `TANDEM_TEST_REQUIRE_CLAUDE` is unset; `.ci/run` sets it.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::common::anthropic::{MessagesStub, Step, claude_env, write_claude_config};
use crate::common::{TestEnv, wait_within};

/// The `claude` binary: `TANDEM_TEST_CLAUDE`, else the one
/// `scripts/test.sh` installs into `.tools/claude`, else `claude` on PATH.
fn claude_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TANDEM_TEST_CLAUDE") {
        return Some(PathBuf::from(path));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/claude/node_modules/.bin/claude");
    if local.exists() {
        return Some(local);
    }
    tandem_core::process::which("claude", std::env::var_os("PATH").as_deref(), std::path::Path::new("/"))
}

#[test]
fn claude_writes_and_commits_a_file_in_its_own_worktree() {
    let Some(claude) = claude_binary() else {
        assert!(
            std::env::var_os("TANDEM_TEST_REQUIRE_CLAUDE").is_none(),
            "the Claude Code CLI is required here but was not found; run `bash scripts/test.sh`, which installs it"
        );
        eprintln!("skipped: the Claude Code CLI is not installed; `bash scripts/test.sh` installs it");
        return;
    };
    let mut env = TestEnv::new();
    // A known worktree folder, so the script can name the absolute path
    // Claude's Write tool wants.
    let worktrees = env.tmp.path().join("wt");
    std::fs::create_dir_all(env.tandem_home.join("config")).expect("config dir");
    std::fs::write(
        env.tandem_home.join("config/config.toml"),
        format!("[worktrees]\ndir = {:?}\n", worktrees.to_string_lossy()),
    )
    .expect("config");
    let worktree = worktrees.join("claude-job");
    let stub = MessagesStub::start(vec![
        Step::tool("Write", json!({ "file_path": worktree.join("hello.txt"), "content": "hello from claude\n" })),
        Step::tool(
            "Bash",
            json!({
                "command": "git add hello.txt && git commit -q -m 'Add hello from claude' && git log -1 --format='committed as %s'",
                "description": "Commit hello.txt"
            }),
        ),
        Step::text("Committed hello.txt."),
    ]);
    let config_dir = env.tmp.path().join("claude-config");
    let api_key = "sk-ant-test-0123456789abcdefghijklmnop";
    write_claude_config(&config_dir, api_key, &env.repo, &["Write", "Bash"]);
    env.env.extend(claude_env(&stub, &config_dir, api_key));
    let claude_dir = claude.parent().expect("claude has a folder").to_string_lossy().into_owned();
    env.env.push(("PATH".to_owned(), format!("{claude_dir}:/usr/local/bin:/usr/bin:/bin")));

    let out = env.ok(&["new", "claude-job", "--bg", "-p", "Write hello.txt with a greeting and commit it"]);
    assert_eq!(out.trim(), format!("claude-job\t{}", worktree.display()));
    let s = env.session("claude-job");
    assert_eq!(s["agent"], "claude", "claude on PATH is the default agent");

    // The agent does the work in its worktree, on its branch.
    let log = wait_within("the commit on branch claude-job", Duration::from_secs(120), || {
        let log = env.git(&["log", "--format=%s", "claude-job"]);
        log.contains("Add hello from claude").then_some(log)
    });
    assert_eq!(log.lines().next(), Some("Add hello from claude"));
    assert_eq!(env.git(&["show", "claude-job:hello.txt"]), "hello from claude\n");
    assert_eq!(std::fs::read_to_string(worktree.join("hello.txt")).expect("file in worktree"), "hello from claude\n");
    assert_eq!(env.git_in(&worktree, &["status", "--porcelain"]), "", "committed, nothing left over");
    // ... and not in the main checkout.
    assert!(!env.repo.join("hello.txt").exists());
    assert!(!env.git(&["log", "--format=%s", "main"]).contains("Add hello from claude"));
    assert_eq!(env.git(&["status", "--porcelain"]), "");

    // Claude really ran the tools and sent their results back.
    let results = wait_within("both tool results at the stand-in", Duration::from_secs(30), || {
        let results = stub.tool_results();
        (results.len() >= 2).then_some(results)
    });
    assert!(results.iter().all(|r| r["is_error"] != true), "tool results: {results:?}");

    // The TUI shows the final answer, and tandem sees the session working.
    wait_within("Claude's last message in the logs", Duration::from_secs(30), || {
        env.ok(&["logs", "claude-job"]).contains("Committed hello.txt.").then_some(())
    });
    // Its hooks report the turn done: no screen reading.
    let s = env.wait_state("claude-job", "idle");
    assert_eq!((s["ahead"].as_u64(), s["dirty"].as_bool()), (Some(1), Some(false)));
    let conversation = s["agent_session"].as_str().expect("the conversation id is recorded").to_owned();
    assert_eq!(conversation.len(), 36, "{conversation}");

    // The history has the prompt, both tool calls with their results,
    // the file change and the agent's answer, in order.
    let history = env.ok(&["history", "claude-job"]);
    let kinds: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|k| *k != "state").collect();
    assert_eq!(
        kinds,
        ["prompt", "tool-call", "tool-result", "file-change", "tool-call", "tool-result", "message"],
        "{history}"
    );
    assert!(history.contains("prompt       Write hello.txt with a greeting and commit it"), "{history}");
    assert!(history.contains(&format!("changed {}", worktree.join("hello.txt").display())), "{history}");
    assert!(history.contains("Bash → committed as Add hello from claude"), "{history}");
    assert!(history.contains("message      Committed hello.txt."), "{history}");
    let events: Vec<serde_json::Value> =
        env.ok(&["history", "claude-job", "--json"]).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert!(events.iter().any(|e| e["kind"] == "tool-call" && e["data"]["content"] == "hello from claude\n"));

    // Search finds the agent's words and a command's output.
    let hits = env.ok(&["search", "committed as"]);
    assert!(hits.starts_with("claude-job  tool-result  "), "{hits}");
    assert!(hits.contains("[committed] [as]"), "{hits}");
    assert!(env.ok(&["search", "Committed hello.txt"]).contains("claude-job  message"));
    assert_eq!(env.ok(&["search", "no-such-words-here"]), "");

    // Removing it refuses (the commit is on no other branch), then keeps it.
    let err = env.fails(&["rm", "claude-job"]);
    assert!(err.contains("1 commit not on main"), "{err}");
    let out = env.ok(&["rm", "--force", "claude-job"]);
    let archive = out.lines().find_map(|l| l.strip_prefix("snapshot kept at ")).expect("archive ref");
    assert_eq!(env.git(&["show", &format!("{archive}:hello.txt")]), "hello from claude\n");
    assert!(!worktree.exists());
    // History outlives the session.
    assert!(env.ok(&["history", "claude-job"]).contains("Committed hello.txt."));
    assert!(env.ok(&["search", "committed as"]).contains("claude-job"));
}
