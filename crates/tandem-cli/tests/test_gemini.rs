//! End to end with the real Gemini CLI (npm `@google/gemini-cli`) driven
//! through `gemini --acp` (the Agent Client Protocol), against a scripted
//! stand-in for the Gemini API on 127.0.0.1 (`common::gemini`).
//!
//! Skipped with a printed reason only when the CLI is absent and
//! `TANDEM_TEST_REQUIRE_AGENTS` is unset; `.ci/run` sets it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::gemini::{GeminiStub, Step, gemini_env, write_gemini_settings};
use crate::common::{TestEnv, agent_and_env, wait_within};

/// Points `env`'s commands at the stand-in: a `GEMINI_CLI_HOME` whose
/// settings use an API key, and `gemini` first on `PATH`. The git
/// identity is left to tandem (Gemini's shell ignores `~/.gitconfig`).
fn use_gemini(env: &mut TestEnv, gemini: &Path, stub: &GeminiStub) {
    let home = env.tmp.path().join("gemini-home");
    write_gemini_settings(&home);
    env.env.extend(gemini_env(stub, &home).into_iter().filter(|(k, _)| !k.starts_with("GIT_")));
    let dir = gemini.parent().expect("gemini has a folder").to_string_lossy().into_owned();
    env.env.push(("PATH".to_owned(), format!("{dir}:/usr/local/bin:/usr/bin:/bin")));
}

fn gemini_and_env() -> Option<(PathBuf, TestEnv)> {
    agent_and_env("gemini")
}

fn minute_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() / 60
}

#[test]
fn gemini_writes_commits_answers_and_resumes_its_session() {
    let Some((gemini, mut env)) = gemini_and_env() else { return };
    let stub = GeminiStub::start(vec![
        Step::shell(
            "printf 'hello from gemini\\n' > hello.txt && git add hello.txt && \
             git commit -q -m 'Add hello from gemini' && git log -1 --format='committed as %s'",
        ),
        Step::text("Committed hello.txt. Shall I add a test as well?"),
        Step::text("Hello again from the same session."),
        Step::text("Still here after the respawn."),
    ]);
    use_gemini(&mut env, &gemini, &stub);
    let agent = "gemini --yolo -m gemini-2.5-flash";

    env.ok(&["new", "gemini-job", "--bg", "--agent", agent, "-p", "Write hello.txt with a greeting and commit it"]);
    let worktree = env.path_of("gemini-job");

    // Gemini does the work in its worktree, on its branch, as the user
    // (tandem passed the git identity Gemini's shell would not see).
    wait_within("the commit on branch gemini-job", Duration::from_secs(120), || {
        env.git(&["log", "--format=%s", "gemini-job"]).contains("Add hello from gemini").then_some(())
    });
    assert_eq!(env.git(&["log", "-1", "--format=%an <%ae>", "gemini-job"]), "Test <test@example.com>\n");
    assert_eq!(env.git(&["show", "gemini-job:hello.txt"]), "hello from gemini\n");
    assert!(!env.repo.join("hello.txt").exists(), "the main checkout is untouched");

    let s = env.wait_state("gemini-job", "asking");
    assert_eq!(s["asking"], "Committed hello.txt. Shall I add a test as well?", "{s}");
    // Gemini named the session's file by a minute no later than this one.
    let created = minute_now();
    let conversation = s["agent_session"].as_str().expect("the session id is recorded").to_owned();
    assert_eq!(conversation.len(), 36, "{conversation}");

    let history = env.ok(&["history", "gemini-job"]);
    let kinds: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|k| *k != "state").collect();
    assert_eq!(kinds, ["prompt", "tool-call", "tool-result", "message", "usage"], "{history}");
    assert!(history.contains("Committed hello.txt. Shall I add a test as well?"), "{history}");
    let hits = env.ok(&["search", "shall I add a test"]);
    assert!(hits.starts_with("gemini-job  message  "), "{hits}");
    assert!(stub.function_output().contains("committed as Add hello from gemini"), "the command ran");

    // A follow-up prompt in the same session.
    env.ok(&["send", "gemini-job", "Say hello again"]);
    wait_within("the follow-up's answer", Duration::from_secs(60), || {
        env.ok(&["history", "gemini-job"]).contains("Hello again from the same session.").then_some(())
    });
    env.wait_state("gemini-job", "idle");

    // Respawn: a new `gemini --acp` loads the session; the stand-in sees
    // the earlier turns. (Gemini CLI 0.61 names a session's file by the
    // minute and overwrites it when a session is loaded in the minute it
    // was made: wait for the next one.)
    wait_within("the next minute", Duration::from_secs(70), || (minute_now() > created).then_some(()));
    let out = env.ok(&["respawn", "gemini-job"]);
    assert!(out.contains("resum"), "{out}");
    // A new Gemini CLI starts and loads the session: as slow as its first
    // start on a loaded machine, longer than `wait_state`'s 20 s.
    wait_within("the respawned Gemini to be idle", Duration::from_secs(120), || {
        (env.session("gemini-job")["state"] == "idle").then_some(())
    });
    env.ok(&["send", "gemini-job", "Are you still there?"]);
    wait_within("the answer after the respawn", Duration::from_secs(90), || {
        env.ok(&["history", "gemini-job"]).contains("Still here after the respawn.").then_some(())
    });
    let last = stub.main_requests().pop().expect("a request after the respawn")["contents"].to_string();
    assert!(last.contains("Say hello again"), "the session was resumed: {last}");
    assert_eq!(env.session("gemini-job")["agent_session"], conversation.as_str());
    let history = env.ok(&["history", "gemini-job"]);
    assert_eq!(history.matches("Committed hello.txt.").count(), 1, "the replay is not recorded twice: {history}");
    assert!(worktree.join("hello.txt").exists());
    env.ok(&["rm", "--force", "gemini-job"]);
}

/// Without `--yolo` Gemini asks before a command: `needs-input` with the
/// command, `tandem approve` lets it run.
#[test]
fn gemini_asks_permission_and_tandem_approves() {
    let Some((gemini, mut env)) = gemini_and_env() else { return };
    let stub = GeminiStub::start(vec![
        Step::shell("echo approved-and-ran > proof.txt"),
        Step::text("The proof is written."),
        Step::shell("sleep 60"),
    ]);
    use_gemini(&mut env, &gemini, &stub);
    env.ok(&["new", "asker", "--bg", "--agent", "gemini -m gemini-2.5-flash", "-p", "Leave proof that you ran"]);
    let worktree = env.path_of("asker");
    let s = env.wait_state("asker", "needs-input");
    assert!(s["asking"].as_str().is_some_and(|a| a.contains("echo approved-and-ran")), "{s}");
    assert!(!worktree.join("proof.txt").exists(), "nothing runs before the answer");
    env.ok(&["approve", "asker"]);
    wait_within("the approved command's file", Duration::from_secs(60), || {
        worktree.join("proof.txt").exists().then_some(())
    });
    env.wait_state("asker", "idle");
    assert!(env.ok(&["history", "asker"]).contains("The proof is written."));

    // Interrupted while it asks: the question is withdrawn, the turn ends.
    env.ok(&["send", "asker", "Wait a minute"]);
    let s = wait_within("the second question", Duration::from_secs(60), || {
        let s = env.session("asker");
        (s["state"] == "needs-input" && s["asking"].as_str().is_some_and(|a| a.contains("sleep 60"))).then_some(s)
    });
    assert_eq!(s["state"], "needs-input");
    env.ok(&["interrupt", "asker"]);
    let s = env.wait_state("asker", "idle");
    assert!(s["asking"].is_null(), "{s}");
    assert!(env.ok(&["history", "asker"]).contains("turn cancelled"));
    env.ok(&["rm", "--force", "asker"]);
}

/// A session started without a name is named from its first prompt by a
/// one-shot `gemini -p`.
#[test]
fn gemini_names_an_unnamed_session() {
    let Some((gemini, mut env)) = gemini_and_env() else { return };
    let stub = GeminiStub::start(vec![Step::text("Nothing to change here.")]);
    use_gemini(&mut env, &gemini, &stub);
    let out = env.ok(&["new", "--bg", "--agent", "gemini -m gemini-2.5-flash", "-p", "Look around the repository"]);
    let (slug, path) = out.trim().split_once('\t').expect("name<TAB>path");
    let (slug, path) = (slug.to_owned(), PathBuf::from(path));
    let s = wait_within("the session to be named", Duration::from_secs(90), || {
        let s = env.sessions().into_iter().find(|s| s["name"] == slug.as_str())?;
        (s["title"] == "Stub title").then_some(s)
    });
    assert_eq!(s["branch"], "stub-title", "{s}");
    assert_eq!(env.git_in(&path, &["branch", "--show-current"]).trim(), "stub-title");
    env.wait_state(&slug, "idle");
    assert!(env.ok(&["history", &slug]).contains("Nothing to change here."));
    env.ok(&["rm", "--force", &slug]);
}
