//! End to end with the real Claude Code CLI (npm `@anthropic-ai/claude-code`)
//! in its interactive TUI, against a scripted stand-in for the Anthropic
//! Messages API on 127.0.0.1 (`common::anthropic`).
//!
//! Skipped with a printed reason only when the CLI is absent and
//! `TANDEM_TEST_REQUIRE_AGENTS` is unset; `.ci/run` sets it.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::common::anthropic::{MessagesStub, Step, use_claude};
use crate::common::{TestEnv, agent_and_env, wait_within};

/// The `claude` binary and a test environment ([`agent_and_env`]).
fn claude_and_env() -> Option<(PathBuf, TestEnv)> {
    agent_and_env("claude")
}

#[test]
fn claude_writes_and_commits_a_file_in_its_own_worktree() {
    let Some((claude, mut env)) = claude_and_env() else { return };
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
        Step::text("Hello again from the same conversation."),
        Step::text("Still here after the respawn."),
    ]);
    use_claude(&mut env, &claude, &stub, &["Write", "Bash"]);

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

    // A second prompt through `send`: typed into the TUI, recorded by the
    // hook, answered, idle again.
    env.ok(&["send", "claude-job", "Say hello again"]);
    wait_within("the second answer in the history", Duration::from_secs(60), || {
        env.ok(&["history", "claude-job"]).contains("Hello again from the same conversation.").then_some(())
    });
    assert!(env.ok(&["history", "claude-job"]).contains("prompt       Say hello again"));
    env.wait_state("claude-job", "idle");

    // Respawn: a new Claude process that resumes the same conversation, so
    // the stand-in sees the earlier turns in the next request.
    let out = env.ok(&["respawn", "claude-job"]);
    assert_eq!(out.trim(), "respawned session claude-job, resuming its conversation");
    let s = env.wait_state("claude-job", "idle");
    assert_eq!(s["agent_session"].as_str(), Some(conversation.as_str()), "the same conversation id");
    env.ok(&["send", "claude-job", "Are you still there?"]);
    wait_within("the answer after the respawn", Duration::from_secs(60), || {
        env.ok(&["history", "claude-job"]).contains("Still here after the respawn.").then_some(())
    });
    let last = stub.main_requests().pop().expect("a request after the respawn");
    let earlier = last["messages"].to_string();
    assert!(
        earlier.contains("Write hello.txt with a greeting and commit it"),
        "the first prompt was resumed: {earlier}"
    );
    env.wait_state("claude-job", "idle");

    // Fork: a new session whose Claude starts from a copy of the
    // conversation (a new id), on a branch from the source's commit.
    let out = env.ok(&["fork", "claude-job"]);
    assert!(out.starts_with("claude-job-fork\t"), "{out}");
    let fork = wait_within("the fork's own conversation id", Duration::from_secs(60), || {
        let s = env.session("claude-job-fork");
        (s["state"] == "idle" && s["agent_session"] != conversation.as_str()).then_some(s)
    });
    assert_eq!(fork["agent_session"].as_str().map(str::len), Some(36), "{fork}");
    assert_eq!(env.git(&["rev-parse", "claude-job-fork"]), env.git(&["rev-parse", "claude-job"]));
    env.ok(&["send", "claude-job-fork", "What did we do?"]);
    wait_within("the fork's answer", Duration::from_secs(60), || {
        env.ok(&["history", "claude-job-fork"]).contains("message      Done.").then_some(())
    });
    let forked = stub.main_requests().pop().expect("the fork's request")["messages"].to_string();
    assert!(forked.contains("Write hello.txt with a greeting and commit it"), "the fork carries the conversation");
    env.ok(&["rm", "--force", "claude-job-fork"]);

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

/// A tool not allowed in the settings: Claude asks, its hooks make the
/// session `needs-input` with the question, `tandem approve` answers, the
/// tool runs and the turn ends `idle`. The session's conversation id
/// is the one tandem gave it.
#[test]
fn claude_asks_permission_and_tandem_approves() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let stub = MessagesStub::start(vec![
        Step::tool("Bash", json!({ "command": "echo approved-and-ran > proof.txt", "description": "Leave proof" })),
        Step::text("The proof is written."),
    ]);
    // Only Write is allowed: Bash needs a decision.
    use_claude(&mut env, &claude, &stub, &["Write"]);

    env.ok(&["new", "asker", "--bg", "-p", "Leave proof that you ran"]);
    let s = env.wait_state("asker", "needs-input");
    let asking = s["asking"].as_str().expect("what it asks").to_owned();
    assert!(asking.contains("echo approved-and-ran > proof.txt"), "{asking}");
    let table = env.ok(&["list"]);
    assert!(table.contains("  needs-input: Bash: echo approved-and-ran > proof.txt  "), "{table}");
    let err = env.fails(&["send", "asker", " "]);
    assert!(err.contains("the prompt is empty"), "{err}");

    env.ok(&["approve", "asker"]);
    let path = env.path_of("asker");
    wait_within("the approved command's output", Duration::from_secs(60), || {
        std::fs::read_to_string(path.join("proof.txt")).ok().filter(|t| t == "approved-and-ran\n")
    });
    env.wait_state("asker", "idle");
    // Nothing is pending now: approving again is refused, changing nothing.
    let err = env.fails(&["approve", "asker"]);
    assert!(err.contains("is not waiting for a permission decision"), "{err}");
    let history = env.ok(&["history", "asker"]);
    assert!(history.contains("asks permission for Bash: echo approved-and-ran > proof.txt"), "{history}");
    assert!(history.contains("approved: Bash: echo approved-and-ran > proof.txt"), "{history}");
    assert!(history.contains("The proof is written."), "{history}");

    // Idle past the timeout (1 s from now on; the supervisor reads the
    // config as it goes) with no terminal attached: stopped, and said so.
    env.user_config("[supervisor]\nidle_timeout_secs = 1\n");
    env.wait_state("asker", "stopped");
    assert!(env.ok(&["history", "asker"]).contains("s idle; `tandem respawn asker` resumes it"));
}

/// A session started without a name is named from its first prompt by a
/// one-shot `claude -p` (the stand-in answers side requests with
/// "Stub title"): title and branch change, the folder does not. Archiving
/// it stores a summary from another one-shot call.
#[test]
fn claude_names_an_unnamed_session_from_its_first_prompt() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let stub = MessagesStub::start(vec![Step::text("Nothing to change here.")]);
    use_claude(&mut env, &claude, &stub, &["Write"]);

    let out = env.ok(&["new", "--bg", "-p", "Look around the repository"]);
    let (slug, path) = out.trim().split_once('\t').expect("name<TAB>path");
    let (slug, path) = (slug.to_owned(), PathBuf::from(path));
    assert_eq!(env.git(&["branch", "--show-current"]).trim(), "main");
    let s = wait_within("the session to be named", Duration::from_secs(60), || {
        let s = env.sessions().into_iter().find(|s| s["name"] == slug.as_str())?;
        (s["title"] == "Stub title").then_some(s)
    });
    assert_eq!(s["branch"], "stub-title", "{s}");
    assert_eq!(s["path"].as_str(), Some(path.to_str().expect("utf-8")), "the folder keeps its name");
    assert_eq!(env.git_in(&path, &["branch", "--show-current"]).trim(), "stub-title");
    assert_eq!(env.git(&["branch", "--list", &slug]), "", "the old branch name is gone");
    assert!(env.ok(&["history", &slug]).contains("named \"Stub title\" (branch stub-title)"));
    // Archiving asks Claude once for a summary (the stand-in's side reply).
    env.wait_state(&slug, "idle");
    env.ok(&["archive", &slug]);
    let archived: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--archived", "--json"])).expect("json");
    assert_eq!(archived[0]["summary"], "Stub title", "{archived}");
    assert!(!path.exists());
    assert!(!env.git(&["branch", "--list", "stub-title"]).is_empty(), "archive keeps the branch");
}

/// `--agent claude-structured`: Claude Code with no terminal, driven
/// through stream-json. Its output becomes history and state as it
/// comes, a permission question waits for `tandem approve`, `send`
/// writes a user message, and `logs` shows the conversation.
#[test]
fn claude_structured_streams_history_and_takes_answers() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let worktrees = env.tmp.path().join("wt");
    env.user_config(&format!("[worktrees]\ndir = {:?}\n", worktrees.to_string_lossy()));
    let worktree = worktrees.join("streamer");
    let stub = MessagesStub::start(vec![
        Step::tool("Write", json!({ "file_path": worktree.join("notes.txt"), "content": "structured notes\n" })),
        Step::tool("Bash", json!({ "command": "echo structured-ran > ran.txt", "description": "Leave proof" })),
        Step::text("Structured turn done."),
        Step::text("Second structured answer."),
    ]);
    use_claude(&mut env, &claude, &stub, &["Write"]);

    env.ok(&["new", "streamer", "--bg", "--agent", "claude-structured", "-p", "Write notes, then leave proof"]);
    let s = env.wait_state("streamer", "needs-input");
    assert_eq!(s["agent"], "claude-structured");
    assert_eq!(s["asking"], "Bash: echo structured-ran > ran.txt", "{s}");
    assert_eq!(std::fs::read_to_string(worktree.join("notes.txt")).expect("written before"), "structured notes\n");
    assert!(!worktree.join("ran.txt").exists(), "Bash waits for the answer");

    env.ok(&["approve", "streamer"]);
    let s = env.wait_state("streamer", "idle");
    assert_eq!(std::fs::read_to_string(worktree.join("ran.txt")).expect("ran"), "structured-ran\n");
    assert_eq!(s["agent_session"].as_str().map(str::len), Some(36), "{s}");
    let history = env.ok(&["history", "streamer"]);
    let at = |needle: &str| history.find(needle).unwrap_or_else(|| panic!("no `{needle}` in:\n{history}"));
    assert!(at("prompt       Write notes, then leave proof") < at("tool-call    Write: "));
    assert!(at("tool-call    Write: ") < at(&format!("file-change  changed {}", worktree.join("notes.txt").display())));
    let asked = at("asks permission for Bash: echo structured-ran > ran.txt");
    let approved = at("approved: Bash: echo structured-ran > ran.txt");
    assert!(asked < approved && approved < at("message      Structured turn done."), "{history}");
    assert!(at("message      Structured turn done.") < at("usage        turn success"));
    assert!(env.ok(&["logs", "streamer"]).contains("● Structured turn done."));

    env.ok(&["send", "streamer", "One more thing"]);
    wait_within("the second answer", Duration::from_secs(60), || {
        env.ok(&["history", "streamer"]).contains("Second structured answer.").then_some(())
    });
    assert!(env.ok(&["history", "streamer"]).contains("prompt       One more thing"));
    env.wait_state("streamer", "idle");
    assert!(env.ok(&["search", "Second structured"]).contains("streamer  message"));
    env.ok(&["stop", "streamer"]);
    assert_eq!(env.session("streamer")["state"], "stopped");
}

/// `kill -9` mid-turn. Of the supervisor: Claude's hooks write to the
/// store themselves, so the turn ends `idle` as if nothing happened. Of
/// the host: Claude goes with its terminal, the session is `lost`, and
/// `respawn` resumes the conversation.
#[test]
fn claude_survives_a_kill_9_of_the_supervisor_and_a_lost_host_resumes() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let stub = MessagesStub::start(vec![
        Step::tool("Bash", json!({ "command": "sleep 3; echo slept-once", "description": "Wait a little" })),
        Step::text("First turn done."),
        // Not `sleep 60`: Claude Code refuses long sleeps in the foreground.
        Step::tool(
            "Bash",
            json!({ "command": "timeout 60 tail -f /dev/null; echo never", "description": "Wait long" }),
        ),
    ]);
    use_claude(&mut env, &claude, &stub, &["Bash"]);
    let kill9 = |pid: i32| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill -9");
    };

    env.ok(&["new", "crashy", "--bg", "-p", "Take your time"]);
    wait_within("the first command to run", Duration::from_secs(60), || {
        env.ok(&["history", "crashy"]).contains("tool-call    Bash: sleep 3; echo slept-once").then_some(())
    });
    kill9(env.supervisor_pid().expect("supervisor"));
    wait_within("the turn to end without a supervisor", Duration::from_secs(60), || {
        let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).ok()?;
        let activity: Option<String> =
            db.query_row("SELECT activity FROM sessions WHERE slug = 'crashy'", [], |r| r.get(0)).ok()?;
        (activity.as_deref() == Some("idle")).then_some(())
    });
    let history = env.ok(&["history", "crashy"]);
    assert!(history.contains("Bash → slept-once"), "{history}");
    assert!(history.contains("message      First turn done."), "{history}");
    env.wait_state("crashy", "idle");

    env.ok(&["send", "crashy", "Now wait longer"]);
    wait_within("the long command to run", Duration::from_secs(60), || {
        env.ok(&["history", "crashy"])
            .contains("tool-call    Bash: timeout 60 tail -f /dev/null; echo never")
            .then_some(())
    });
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let host: i32 =
        db.query_row("SELECT host_pid FROM sessions WHERE slug = 'crashy'", [], |r| r.get(0)).expect("host");
    kill9(host);
    env.wait_state("crashy", "lost");
    let out = env.ok(&["respawn", "crashy"]);
    assert_eq!(out.trim(), "respawned session crashy, resuming its conversation");
    env.wait_state("crashy", "idle");
    env.ok(&["send", "crashy", "Go on"]);
    // The resumed Claude sends the whole conversation with the new prompt.
    let resumed = wait_within("the request after the resume", Duration::from_secs(60), || {
        let last = stub.main_requests().pop()?["messages"].to_string();
        last.contains("Go on").then_some(last)
    });
    assert!(resumed.contains("Take your time") && resumed.contains("First turn done."), "{resumed}");
    assert!(env.ok(&["history", "crashy"]).contains("prompt       Go on"));
    env.ok(&["stop", "crashy"]);
}

/// `tandem review`: a Claude Code review session gets the reviewed
/// session's brief and diff (uncommitted and untracked work included) in
/// a read-only checkout of its state; its answer lands in the reviewed
/// session's history; removing the review needs no `--force`.
#[test]
fn claude_reviews_a_session_and_its_findings_reach_that_sessions_history() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let worktrees = env.tmp.path().join("wt");
    env.user_config(&format!("[worktrees]\ndir = {:?}\n", worktrees.to_string_lossy()));
    let stub = MessagesStub::start(vec![Step::text(
        "Finding: divide() in calc.py fails when b is 0 (calc.py:2); add a test for it.",
    )]);
    use_claude(&mut env, &claude, &stub, &[]);

    env.ok(&["new", "calc", "--bg", "--agent", "shell", "--title", "A calculator"]);
    let wt = env.path_of("calc");
    std::fs::write(wt.join("calc.py"), "def divide(a, b):\n    return a / b\n").expect("write");
    env.git_in(&wt, &["add", "calc.py"]);
    env.git_in(&wt, &["commit", "-q", "-m", "Add divide"]);
    std::fs::write(wt.join("notes.md"), "untracked notes line\n").expect("write");
    let status_before = env.git_in(&wt, &["status", "--porcelain"]);

    // The shell takes no prompt: refused, nothing made.
    let err = env.fails(&["review", "calc", "--agent", "shell"]);
    assert!(err.contains("a review needs an agent that takes a prompt"), "{err}");
    let out = env.ok(&["review", "calc", "--agent", "claude-structured"]);
    assert!(out.starts_with("calc-review\t"), "{out}");
    let review = env.path_of("calc-review");
    let s = env.session("calc-review");
    assert_eq!((s["review_of"].as_str(), s["title"].as_str()), (Some("calc"), Some("Review of A calculator")), "{s}");

    // The checkout has calc's state, untracked work included, read-only.
    assert_eq!(std::fs::read_to_string(review.join("notes.md")).expect("notes"), "untracked notes line\n");
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("stat").permissions())
    };
    assert_eq!(mode(&review.join("calc.py")) & 0o222, 0, "calc.py is read-only");
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), status_before, "calc is untouched");
    assert_eq!(env.ok(&["diff", "calc-review", "--name-only"]), "calc.py\nnotes.md\n", "same base as calc");

    wait_within("the review's findings in calc's history", Duration::from_secs(60), || {
        env.ok(&["history", "calc"])
            .contains("review       Finding: divide() in calc.py fails when b is 0")
            .then_some(())
    });
    let prompt = stub.main_requests()[0].to_string();
    assert!(prompt.contains("Review the work of another coding agent: tandem session `calc`"), "{prompt}");
    assert!(prompt.contains("Its title: A calculator"), "{prompt}");
    assert!(prompt.contains("+def divide(a, b):") && prompt.contains("+untracked notes line"), "{prompt}");
    assert!(env.ok(&["search", "divide"]).contains("calc  review"), "findings are searchable");

    env.ok(&["rm", "calc-review", "--wait"]);
    assert!(!review.exists());
    assert!(env.git(&["for-each-ref", "refs/tandem/review/"]).is_empty(), "its start ref went with it");
}

/// `tandem task` with Claude Code trials: each gets the brief as its
/// first prompt, works, ends its turn without a handoff, is asked for one
/// by the supervisor, and the answer is stored; `task show` compares them
/// (check, tokens, handoff summary).
#[test]
fn claude_trials_get_the_brief_and_are_asked_for_their_handoff() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let worktrees = env.tmp.path().join("wt");
    env.user_config(&format!("[worktrees]\ndir = {:?}\n", worktrees.to_string_lossy()));
    let handoff = "## Handoff\n### Summary\nWrote note.txt and committed it.\n### Files changed\nnote.txt\n\
                   ### Tests run\nnone\n### Open questions\nnone\n### Next steps\nnone";
    // Every trial's conversation follows the same script.
    let stub = MessagesStub::start(vec![
        Step::tool(
            "Bash",
            json!({ "command": "echo note > note.txt && git add note.txt && git commit -qm 'Add note'", "description": "Write the note" }),
        ),
        Step::text("Done: the note is committed."),
        Step::text(handoff),
    ]);
    use_claude(&mut env, &claude, &stub, &["Bash"]);

    let out = env.ok(&[
        "task",
        "new",
        "Leave a note in note.txt",
        "--name",
        "notes",
        "--trials",
        "2",
        "--agents",
        "claude-structured",
        "--base",
        "head",
        "--check",
        "test -f note.txt",
    ]);
    assert!(out.contains("notes-t1\tclaude-structured") && out.contains("notes-t2\tclaude-structured"), "{out}");
    let shown = wait_within("both handoffs", Duration::from_secs(90), || {
        let shown: serde_json::Value =
            serde_json::from_str(&env.ok(&["task", "show", "notes", "--json"])).expect("json");
        let trials = shown["trials"].as_array().expect("trials").clone();
        trials.iter().all(|t| t["handoff_summary"] == "Wrote note.txt and committed it.").then_some(shown)
    });
    for t in shown["trials"].as_array().expect("trials") {
        assert_eq!(t["files"], json!(["note.txt"]), "{t}");
        assert_eq!(t["check"]["passed"], true, "{t}");
        assert!(t["tokens"].as_u64().is_some_and(|n| n > 0), "{t}");
    }
    let history = env.ok(&["history", "notes-t1"]);
    assert!(history.contains("prompt       # Task `notes`: trial 1 of 2"), "{history}");
    assert!(history.contains("prompt       tandem asks for your handoff."), "{history}");
    assert!(history.contains("handoff      ## Handoff"), "{history}");
    let first = stub.main_requests()[0].to_string();
    assert!(first.contains("Leave a note in note.txt") && first.contains("### Summary"), "{first}");
    // Asked once: a stored handoff is not asked for again. Proof that the
    // supervisor looked again since: t2 gets a turn that ends without a
    // handoff (past the script, the stand-in says "Done."), so a later
    // pass over every idle trial (t1 too) asks t2, and the pass after it
    // stores t2's answer.
    env.ok(&["send", "notes-t2", "Anything else?"]);
    wait_within("t2 asked again and its answer stored", Duration::from_secs(90), || {
        let history = env.ok(&["history", "notes-t2"]);
        let (_, since) = history.split_once("prompt       Anything else?")?;
        let (_, answer) = since.split_once("tandem asks for your handoff")?;
        answer.contains("handoff      ").then_some(())
    });
    let asks = env.ok(&["history", "notes-t1"]).matches("tandem asks for your handoff").count();
    assert_eq!(asks, 1);
}

/// A secret from an env file that shows up in a command's output is
/// masked in `tandem history` and never found by `tandem search`.
#[test]
fn claude_command_output_with_a_secret_is_redacted_in_history() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let stub = MessagesStub::start(vec![
        Step::tool("Bash", json!({ "command": "echo \"the token is $API_TOKEN\"", "description": "Show the token" })),
        Step::text("I printed it."),
    ]);
    use_claude(&mut env, &claude, &stub, &["Bash"]);
    let file = env.tmp.path().join("api.env");
    std::fs::write(&file, "API_TOKEN=sk-live-5ecret-999\n").expect("write");
    env.ok(&[
        "new",
        "leaky",
        "--bg",
        "--agent",
        "claude-structured",
        "--base",
        "head",
        "--env-file",
        &file.to_string_lossy(),
        "-p",
        "Print the token",
    ]);
    let history = wait_within("the command's result", Duration::from_secs(60), || {
        let h = env.ok(&["history", "leaky"]);
        h.contains("I printed it.").then_some(h)
    });
    assert!(history.contains("the token is ••••••"), "{history}");
    assert!(!history.contains("5ecret"), "{history}");
    assert!(!env.ok(&["search", "5ecret"]).contains("leaky"));
    assert!(!env.ok(&["logs", "leaky"]).contains("5ecret"));
    for file in ["state/tandem.db", "state/tandem.db-wal"] {
        let bytes = std::fs::read(env.tandem_home.join(file)).unwrap_or_default();
        assert!(!bytes.windows(b"5ecret".len()).any(|w| w == b"5ecret"), "{file} holds the secret");
    }
}

/// Claude Code fenced in by bubblewrap, its network off but for the
/// stand-in's address (`sandbox.allow_net`): it still talks to the API,
/// writes and commits in its worktree, and its hooks still report.
#[test]
fn claude_in_a_workspace_sandbox_writes_and_commits() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let worktrees = env.tmp.path().join("wt");
    let worktree = worktrees.join("boxed");
    let escaped = env.repo.join("escaped");
    let stub = MessagesStub::start(vec![
        Step::tool("Write", json!({ "file_path": worktree.join("boxed.txt"), "content": "written in a sandbox\n" })),
        Step::tool(
            "Bash",
            json!({
                "command": format!("git add boxed.txt && git commit -q -m 'Add boxed.txt' && (touch {} ../escaped \"$TANDEM_HOME/state/intruder\" 2>&1 || true)", escaped.display()),
                "description": "Commit boxed.txt"
            }),
        ),
        Step::text("Committed from the sandbox."),
    ]);
    use_claude(&mut env, &claude, &stub, &["Write", "Bash"]);
    std::fs::create_dir_all(env.tandem_home.join("config")).expect("config dir");
    std::fs::write(
        env.tandem_home.join("config/config.toml"),
        format!(
            "[worktrees]\ndir = {:?}\n[sandbox]\nmode = \"workspace\"\nnetwork = \"off\"\nallow_net = [\"127.0.0.1:{}\"]\n",
            worktrees.to_string_lossy(),
            stub.port()
        ),
    )
    .expect("config");

    env.ok(&["new", "boxed", "--bg", "-p", "Write boxed.txt and commit it"]);
    assert_eq!(env.session("boxed")["sandbox"], "workspace");
    let log = wait_within("the sandboxed commit", Duration::from_secs(120), || {
        let log = env.git(&["log", "--format=%s", "boxed"]);
        log.contains("Add boxed.txt").then_some(log)
    });
    assert_eq!(log.lines().next(), Some("Add boxed.txt"));
    assert_eq!(env.git(&["show", "boxed:boxed.txt"]), "written in a sandbox\n");
    // Its Bash tool could not write beside the worktree.
    assert!(!escaped.exists() && !worktrees.join("escaped").exists(), "the sandbox kept the writes out");
    assert!(!env.tandem_home.join("state/intruder").exists(), "tandem's store is out of reach");
    let results = wait_within("both tool results", Duration::from_secs(30), || {
        let results = stub.tool_results();
        (results.len() >= 2).then_some(results)
    });
    assert!(results[1].to_string().contains("Read-only file system"), "{results:?}");
    // The hooks reported from inside, through the host: the turn is
    // recorded, the state idle.
    env.wait_state("boxed", "idle");
    assert!(env.ok(&["history", "boxed"]).contains("message      Committed from the sandbox."));
    env.ok(&["rm", "--force", "boxed"]);
}

/// Issue 19: a turn that ends with a question to the user is `asking`
/// (the NEEDS INPUT group) with the question, not `idle`. No permission
/// waits, so `approve` is refused and says how to answer; Claude's
/// reminder that it waits (its `Notification` hook after 60 s idle) is
/// no permission request and leaves the question standing; the answer,
/// sent as a prompt, ends the next turn `idle`.
#[test]
fn claude_ending_its_turn_with_a_question_needs_input() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let stub = MessagesStub::start(vec![
        Step::text("I can keep the sessions in two ways.\n\n**Which database should I use?**"),
        Step::text("Postgres it is."),
    ]);
    use_claude(&mut env, &claude, &stub, &[]);

    env.ok(&["new", "db", "--bg", "-p", "Set up the storage"]);
    let s = wait_within("the question", Duration::from_secs(120), || {
        Some(env.session("db")).filter(|s| s["state"] == "asking")
    });
    assert_eq!(s["asking"], "Which database should I use?", "{s}");
    let table = env.ok(&["list"]);
    assert!(table.contains("asking: Which database should I use?"), "{table}");
    let err = env.fails(&["approve", "db"]);
    assert!(err.contains("asks a question, not for a permission; answer it with `tandem send db"), "{err}");

    // Claude's reminder, as its hook sends it (`tandem hook`, JSON on stdin).
    let id = s["id"].as_str().expect("id").to_owned();
    let mut hook = env
        .command_in(&env.repo, &["hook"])
        .env("TANDEM_SESSION_ID", &id)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("tandem hook");
    let reminder = json!({
        "hook_event_name": "Notification",
        "notification_type": "idle_prompt",
        "message": "Claude is waiting for your input",
    });
    std::io::Write::write_all(&mut hook.stdin.take().expect("stdin"), reminder.to_string().as_bytes()).expect("write");
    assert!(hook.wait().expect("hook ends").success());
    let s = env.session("db");
    assert_eq!((s["state"].as_str(), s["asking"].as_str()), (Some("asking"), Some("Which database should I use?")));
    let history = env.ok(&["history", "db"]);
    assert!(history.contains("state        waiting: Claude is waiting for your input"), "{history}");
    assert!(!history.contains("permission"), "the reminder is no permission request:\n{history}");

    env.ok(&["send", "db", "Postgres"]);
    let s = wait_within("the answer's turn", Duration::from_secs(120), || {
        Some(env.session("db")).filter(|s| s["state"] == "idle")
    });
    assert_eq!(s["asking"], serde_json::Value::Null);
    assert!(env.ok(&["history", "db"]).contains("message      Postgres it is."));
}

/// Issue 22: `rewind --conversation` puts the files back and restarts
/// Claude Code (structured) with its conversation cut after that turn:
/// the next prompt reaches the model with turn 1's exchange and without
/// turn 2's.
#[test]
fn rewind_with_conversation_resumes_claude_from_that_turn() {
    let Some((claude, mut env)) = claude_and_env() else { return };
    let worktrees = env.tmp.path().join("wt");
    env.user_config(&format!("[worktrees]\ndir = {:?}\n", worktrees.to_string_lossy()));
    let worktree = worktrees.join("talk");
    let stub = MessagesStub::start(vec![
        Step::tool("Write", json!({ "file_path": worktree.join("one.txt"), "content": "one\n" })),
        Step::text("Wrote one (turn-one-marker)."),
        Step::tool("Write", json!({ "file_path": worktree.join("two.txt"), "content": "two\n" })),
        Step::text("Wrote two (turn-two-marker)."),
    ]);
    use_claude(&mut env, &claude, &stub, &["Write"]);
    env.ok(&["new", "talk", "--bg", "--agent", "claude-structured", "-p", "write one"]);
    let first = wait_within("checkpoint 1", Duration::from_secs(60), || {
        let list: serde_json::Value = serde_json::from_str(&env.ok(&["checkpoints", "talk", "--json"])).ok()?;
        list.as_array().filter(|l| !l.is_empty()).map(|l| l[0].clone())
    });
    assert!(first["message_id"].as_str().is_some_and(|m| !m.is_empty()), "Claude's message id is kept: {first}");
    env.ok(&["send", "talk", "write two"]);
    wait_within("checkpoint 2", Duration::from_secs(60), || {
        let list: serde_json::Value = serde_json::from_str(&env.ok(&["checkpoints", "talk", "--json"])).ok()?;
        (list.as_array()?.len() >= 2).then_some(())
    });
    env.wait_state("talk", "idle");

    let out = env.ok(&["rewind", "talk", "1", "--conversation"]);
    assert!(out.contains("conversation as at the end of that turn"), "{out}");
    assert!(!worktree.join("two.txt").exists() && worktree.join("one.txt").exists());
    env.ok(&["send", "talk", "and now?"]);
    // The stand-in answers by the number of assistant messages so far, so
    // the request itself is what to read.
    let asked = wait_within("the next prompt at the model", Duration::from_secs(60), || {
        stub.main_requests().into_iter().map(|r| r.to_string()).find(|r| r.contains("and now?"))
    });
    assert!(asked.contains("turn-one-marker"), "turn 1 stays in the conversation: {asked}");
    assert!(!asked.contains("turn-two-marker"), "turn 2 is cut from it: {asked}");
}
