//! Issue 19: what a session's state is called, and what the default
//! agent may be given. A prompt is never typed into a shell the user did
//! not ask for; an agent that exits with an error is `failed` (the ERROR
//! group), never done.

use crate::common::{TestEnv, stderr, wait_for};

#[test]
fn a_prompt_is_refused_when_the_default_agent_falls_back_to_a_shell() {
    let env = TestEnv::new();
    // No `claude` on the test's PATH: the default agent is a shell.
    let before = env.repo_state();
    let err = env.fails(&["new", "cleanup", "--bg", "-p", "rm the old build dir"]);
    assert!(err.contains("`claude` is not on PATH"), "{err}");
    assert!(err.contains("--agent shell"), "the error names the way on: {err}");
    assert_eq!(env.repo_state(), before, "refusing made no branch or worktree");
    assert!(env.sessions().is_empty(), "and no session");

    // Without a prompt the shell starts, and the fallback is said.
    let out = env.tandem(&["new", "plain", "--bg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("note: `claude` is not on PATH, so this session runs a shell; name an agent with --agent"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.session("plain")["agent"], "shell");

    // Asked for by name, the shell gets the prompt typed, and nothing is said.
    let out = env.tandem(&["new", "typed", "--bg", "--agent", "shell", "-p", "echo typed-$((6*7))"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not on PATH"), "{}", stderr(&out));
    wait_for("the typed prompt's output", || env.ok(&["logs", "typed"]).contains("typed-42").then_some(()));
}

#[test]
fn an_agent_that_exits_with_an_error_is_failed_not_done() {
    let env = TestEnv::new();
    env.ok(&["new", "crashed", "--bg", "--agent", "sh -c 'echo No conversation found; exit 3'"]);
    env.ok(&["new", "finished", "--bg", "--agent", "sh -c 'exit 0'"]);
    let s = env.wait_state("crashed", "failed");
    assert_eq!(s["exit_code"], 3);
    let s = env.wait_state("finished", "exited");
    assert_eq!(s["exit_code"], 0);
    let table = env.ok(&["list"]);
    assert!(table.contains("failed (exit 3)"), "{table}");
    assert!(table.contains("exited (0)"), "{table}");
    let err = env.fails(&["attach", "crashed"]);
    assert!(err.contains("not running (failed (exit 3))"), "{err}");
}
