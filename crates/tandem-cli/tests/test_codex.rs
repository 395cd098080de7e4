//! End to end with the real Codex CLI (npm `@openai/codex`) driven through
//! `codex app-server`, against a scripted stand-in for the OpenAI
//! Responses API on 127.0.0.1 (`common::openai`).
//!
//! Skipped with a printed reason only when the CLI is absent and
//! `TANDEM_TEST_REQUIRE_AGENTS` is unset; `.ci/run` sets it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::openai::{ResponsesStub, Step, codex_env, write_codex_config};
use crate::common::{TestEnv, agent_and_env, wait_within};

/// Points `env`'s commands at the stand-in: a `CODEX_HOME` whose config
/// uses it, and `codex` first on `PATH`.
fn use_codex(env: &mut TestEnv, codex: &Path, stub: &ResponsesStub) {
    let home = env.tmp.path().join("codex-home");
    write_codex_config(&home, &stub.base_url(), env.tmp.path());
    env.env.extend(codex_env(stub, &home));
    let dir = codex.parent().expect("codex has a folder").to_string_lossy().into_owned();
    env.env.push(("PATH".to_owned(), format!("{dir}:/usr/local/bin:/usr/bin:/bin")));
}

fn codex_and_env() -> Option<(PathBuf, TestEnv)> {
    agent_and_env("codex")
}

/// The text of every input item of a request to the stand-in.
fn input_text(request: &serde_json::Value) -> String {
    request["input"].to_string()
}

#[test]
fn codex_writes_commits_answers_and_resumes_its_thread() {
    let Some((codex, mut env)) = codex_and_env() else { return };
    let stub = ResponsesStub::start(vec![
        Step::shell(
            "printf 'hello from codex\\n' > hello.txt && git add hello.txt && \
             git commit -q -m 'Add hello from codex' && git log -1 --format='committed as %s'",
        ),
        Step::text("Committed hello.txt. Shall I add a test as well?"),
        Step::text("Hello again from the same thread."),
        Step::text("Still here after the respawn."),
    ]);
    use_codex(&mut env, &codex, &stub);
    let agent = "codex -c approval_policy=never -c sandbox_mode=danger-full-access";

    env.ok(&["new", "codex-job", "--bg", "--agent", agent, "-p", "Write hello.txt with a greeting and commit it"]);
    let worktree = env.path_of("codex-job");
    let s = env.session("codex-job");
    assert_eq!(s["agent"], agent);

    // Codex does the work in its worktree, on its branch.
    wait_within("the commit on branch codex-job", Duration::from_secs(120), || {
        env.git(&["log", "--format=%s", "codex-job"]).contains("Add hello from codex").then_some(())
    });
    assert_eq!(env.git(&["show", "codex-job:hello.txt"]), "hello from codex\n");
    assert!(!env.repo.join("hello.txt").exists(), "the main checkout is untouched");

    // The turn ends with a question: the session waits for the answer
    // (NEEDS INPUT), which is the next prompt.
    let s = env.wait_state("codex-job", "asking");
    assert_eq!(s["asking"], "Committed hello.txt. Shall I add a test as well?", "{s}");
    let thread = s["agent_session"].as_str().expect("the thread id is recorded").to_owned();
    assert!(!thread.is_empty());
    assert_eq!((s["ahead"].as_u64(), s["dirty"].as_bool()), (Some(1), Some(false)));

    // History: the prompt, the command and its output, the answer, usage.
    let history = env.ok(&["history", "codex-job"]);
    let kinds: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|k| *k != "state").collect();
    assert_eq!(kinds, ["prompt", "tool-call", "tool-result", "message", "usage"], "{history}");
    assert!(history.contains("committed as Add hello from codex"), "{history}");
    assert!(history.contains("Committed hello.txt. Shall I add a test as well?"), "{history}");
    let events: Vec<serde_json::Value> =
        env.ok(&["history", "codex-job", "--json"]).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let result = events.iter().find(|e| e["kind"] == "tool-result").expect("a tool result");
    assert_eq!(result["data"]["exit_code"], 0, "{result}");
    let hits = env.ok(&["search", "committed as"]);
    assert!(hits.starts_with("codex-job  tool-result  "), "{hits}");
    assert!(env.ok(&["logs", "codex-job"]).contains("● Committed hello.txt."));

    // A follow-up prompt: the same thread, the next answer.
    env.ok(&["send", "codex-job", "Say hello again"]);
    wait_within("the follow-up's answer", Duration::from_secs(60), || {
        env.ok(&["history", "codex-job"]).contains("Hello again from the same thread.").then_some(())
    });
    env.wait_state("codex-job", "idle");
    let follow_up = stub.main_requests().pop().expect("the follow-up request");
    assert!(input_text(&follow_up).contains("Write hello.txt with a greeting"), "one conversation");

    // Respawn: a new app-server resumes the thread; the stand-in sees the
    // earlier turns.
    let out = env.ok(&["respawn", "codex-job"]);
    assert!(out.contains("resum"), "{out}");
    env.wait_state("codex-job", "idle");
    env.ok(&["send", "codex-job", "Are you still there?"]);
    wait_within("the answer after the respawn", Duration::from_secs(60), || {
        env.ok(&["history", "codex-job"]).contains("Still here after the respawn.").then_some(())
    });
    let last = stub.main_requests().pop().expect("a request after the respawn");
    assert!(input_text(&last).contains("Say hello again"), "the thread was resumed: {}", input_text(&last));
    assert_eq!(env.session("codex-job")["agent_session"], thread.as_str(), "the same thread");
    assert!(worktree.join("hello.txt").exists());

    // Fork: a new session on a new thread that starts from this one's.
    let out = env.ok(&["fork", "codex-job"]);
    assert!(out.starts_with("codex-job-fork\t"), "{out}");
    let fork = wait_within("the fork's own thread", Duration::from_secs(60), || {
        let s = env.session("codex-job-fork");
        (s["state"] == "idle" && s["agent_session"].is_string() && s["agent_session"] != thread.as_str()).then_some(s)
    });
    assert_eq!(fork["agent"], agent);
    env.ok(&["send", "codex-job-fork", "What did we do?"]);
    wait_within("the fork's answer", Duration::from_secs(60), || {
        env.ok(&["history", "codex-job-fork"]).contains("message      Done.").then_some(())
    });
    let forked = input_text(&stub.main_requests().pop().expect("the fork's request"));
    assert!(forked.contains("Are you still there?"), "the fork carries the conversation: {forked}");
    env.ok(&["rm", "--force", "codex-job-fork"]);
    env.ok(&["rm", "--force", "codex-job"]);
}

/// Codex's defaults (`on-request`, `workspace-write`): the model asks to
/// run a command outside the sandbox, the session shows `needs-input`
/// with the command, `tandem approve` lets it run; the next one is denied
/// with a message, which Codex gets.
#[test]
fn codex_asks_permission_and_tandem_answers() {
    let Some((codex, mut env)) = codex_and_env() else { return };
    let stub = ResponsesStub::start(vec![
        Step::escalated("echo approved-and-ran > proof.txt"),
        Step::escalated("echo denied-but-ran > denied.txt"),
        Step::text("Understood, I left it."),
        Step::shell("sleep 60"),
    ]);
    use_codex(&mut env, &codex, &stub);
    env.ok(&["new", "asker", "--bg", "--agent", "codex", "-p", "Leave proof that you ran"]);
    let worktree = env.path_of("asker");

    let s = env.wait_state("asker", "needs-input");
    assert!(s["asking"].as_str().is_some_and(|a| a.contains("echo approved-and-ran > proof.txt")), "{s}");
    assert!(!worktree.join("proof.txt").exists(), "nothing runs before the answer");
    env.ok(&["approve", "asker"]);
    wait_within("the approved command's file", Duration::from_secs(60), || {
        worktree.join("proof.txt").exists().then_some(())
    });

    let s = wait_within("the second question", Duration::from_secs(60), || {
        let s = env.session("asker");
        (s["state"] == "needs-input" && s["asking"].as_str().is_some_and(|a| a.contains("denied-but-ran"))).then_some(s)
    });
    assert!(s["asking"].as_str().is_some_and(|a| a.starts_with("Bash: ")), "{s}");
    env.ok(&["deny", "asker", "--message", "Please leave denied.txt alone"]);
    // The denied command is skipped and the turn goes on; the message
    // follows as the next prompt, whose turn starts a long command.
    wait_within("the long command", Duration::from_secs(30), || {
        env.ok(&["history", "asker"]).contains("'sleep 60'").then_some(())
    });
    assert!(!worktree.join("denied.txt").exists(), "a denied command does not run");
    let history = env.ok(&["history", "asker"]);
    assert_eq!(history.matches("asks permission for Bash: ").count(), 2, "{history}");
    assert!(history.contains("denied: Bash: ") && history.contains("approved: Bash: "), "{history}");
    assert!(history.contains("Understood, I left it."), "{history}");
    let asked = stub.requests().iter().map(input_text).collect::<Vec<_>>().join("\n");
    assert!(asked.contains("Please leave denied.txt alone"), "the deny message reaches Codex");

    // The long command, interrupted: the turn ends at once.
    assert_eq!(env.session("asker")["state"], "running");
    env.ok(&["interrupt", "asker"]);
    wait_within("the interrupted turn", Duration::from_secs(10), || {
        let s = env.session("asker");
        (s["state"] == "idle" && env.ok(&["history", "asker"]).contains("turn interrupted")).then_some(())
    });
    env.ok(&["rm", "--force", "asker"]);
}

/// A session started without a name is named from its first prompt by a
/// one-shot `codex exec`, and archiving asks Codex for the summary.
#[test]
fn codex_names_an_unnamed_session_and_summarizes_it() {
    let Some((codex, mut env)) = codex_and_env() else { return };
    let stub = ResponsesStub::start(vec![Step::text("Nothing to change here.")]);
    use_codex(&mut env, &codex, &stub);
    let out = env.ok(&["new", "--bg", "--agent", "codex", "-p", "Look around the repository"]);
    let (slug, path) = out.trim().split_once('\t').expect("name<TAB>path");
    let (slug, path) = (slug.to_owned(), PathBuf::from(path));
    let s = wait_within("the session to be named", Duration::from_secs(60), || {
        let s = env.sessions().into_iter().find(|s| s["name"] == slug.as_str())?;
        (s["title"] == "Stub title").then_some(s)
    });
    assert_eq!(s["branch"], "stub-title", "{s}");
    assert_eq!(env.git_in(&path, &["branch", "--show-current"]).trim(), "stub-title");
    env.wait_state(&slug, "idle");
    env.ok(&["archive", &slug]);
    let archived: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--archived", "--json"])).expect("json");
    assert_eq!(archived[0]["summary"], "Stub title", "{archived}");
}
