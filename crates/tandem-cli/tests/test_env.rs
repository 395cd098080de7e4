//! Session environments: layering and precedence, secrets masked,
//! `TANDEM_PORT` blocks, and bad input.

use std::time::Duration;

use crate::common::{TestEnv, wait_within};

fn env_of(env: &TestEnv, name: &str) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["env", name, "--json"])).expect("json")
}

#[test]
fn the_agent_environment_is_layered_and_secrets_are_masked() {
    let mut env = TestEnv::new();
    env.user_config("[env]\nA = \"user\"\nB = \"user\"\n[env.secret]\nS = \"topsecret\"\n");
    std::fs::write(env.repo.join(".tandem.toml"), "[env]\nB = \"repo\"\nC = \"repo\"\n").expect("write");
    env.git(&["add", ".tandem.toml"]);
    env.git(&["commit", "-q", "-m", "tandem config"]);
    // A repository's values reach the agent once approved (issue 16).
    env.ok(&["hooks", "approve", "--yes"]);
    let file = env.tmp.path().join("app.env");
    std::fs::write(&file, "# secrets\nexport C=\"from file\"\nD=filesecret\n").expect("write");
    env.env.extend([("A", "caller"), ("X", "caller"), ("TANDEM_PORT", "1")].map(|(k, v)| (k.to_owned(), v.to_owned())));

    let file_arg = file.to_string_lossy().into_owned();
    env.ok(&[
        "new",
        "layers",
        "--bg",
        "--agent",
        "shell",
        "--base",
        "head",
        "--env-file",
        &file_arg,
        "--env",
        "D=cli",
        "--env",
        "E=cli=with=equals",
    ]);
    let seen = env_of(&env, "layers");
    assert_eq!(seen["A"], "user", "[env] beats the caller");
    assert_eq!(seen["B"], "repo", "the repository beats the user");
    assert_eq!(seen["X"], "caller");
    assert_eq!(seen["C"], "••••••", "env-file values are secrets");
    assert_eq!(seen["D"], "cli", "--env beats the env file, and is no secret");
    assert_eq!(seen["E"], "cli=with=equals");
    assert_eq!(seen["S"], "••••••");
    assert_eq!(seen["TANDEM_SESSION"], "layers");
    assert_eq!(seen["TANDEM_BRANCH"], "layers");
    assert_eq!(seen["TANDEM_BASE"], "main");
    assert_eq!(seen["TANDEM_REPO"], env.repo.to_string_lossy().as_ref());
    assert_eq!(seen["TANDEM_WORKTREE"], env.path_of("layers").to_string_lossy().as_ref());
    assert_eq!(seen["TANDEM_PORT"], "41000", "tandem's own cannot be overridden");
    let text = env.ok(&["env", "layers"]);
    assert!(text.contains("S=••••••") && !text.contains("topsecret") && !text.contains("from file"), "{text}");

    // The agent itself has the real values.
    env.ok(&["send", "layers", "printf '%s|%s|%s' \"$S\" \"$C\" \"$TANDEM_PORT\" > vals.txt"]);
    let vals = env.path_of("layers").join("vals.txt");
    let got = wait_within("the shell's answer", Duration::from_secs(20), || {
        std::fs::read_to_string(&vals).ok().filter(|t| t.contains('|'))
    });
    assert_eq!(got, "topsecret|from file|41000");

    let shown = env.ok(&["config", "show"]);
    assert!(shown.contains("env.secret.S") && !shown.contains("topsecret"), "{shown}");
    let err = env.fails(&["env", "nope"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn each_live_session_has_its_own_port_block_freed_on_stop() {
    let env = TestEnv::new();
    env.user_config("[ports]\nbase = 42000\nblock = 5\n");
    env.ok(&["new", "one", "--bg", "--agent", "shell", "--base", "head"]);
    env.ok(&["new", "two", "--bg", "--agent", "shell", "--base", "head"]);
    assert_eq!(env_of(&env, "one")["TANDEM_PORT"], "42000");
    assert_eq!(env_of(&env, "two")["TANDEM_PORT"], "42005");
    env.ok(&["stop", "one"]);
    let err = env.fails(&["env", "one"]);
    assert!(err.contains("has no running agent"), "{err}");
    env.ok(&["new", "three", "--bg", "--agent", "shell", "--base", "head"]);
    assert_eq!(env_of(&env, "three")["TANDEM_PORT"], "42000", "a stopped session's block is free again");
    env.ok(&["respawn", "one"]);
    assert_eq!(env_of(&env, "one")["TANDEM_PORT"], "42010", "a new block when it starts again");
}

#[test]
fn bad_environment_input_is_refused_with_nothing_made() {
    let env = TestEnv::new();
    let before = env.repo_state();
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--env", "NOVALUE"]);
    assert!(err.contains("`NOVALUE` is not KEY=VALUE"), "{err}");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--env", "1X=y"]);
    assert!(err.contains("`1X` is not a variable name"), "{err}");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--env-file", "/no/such/file.env"]);
    assert!(err.contains("cannot read the env file /no/such/file.env"), "{err}");
    let bad = env.tmp.path().join("bad.env");
    std::fs::write(&bad, "GOOD=1\nthis is not a pair\n").expect("write");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--env-file", &bad.to_string_lossy()]);
    assert!(err.contains("bad.env:2: not KEY=VALUE"), "{err}");
    assert_eq!(env.repo_state(), before);
}

#[test]
fn secret_values_never_reach_the_log() {
    let mut env = TestEnv::new();
    let file = env.tmp.path().join("secrets.env");
    std::fs::write(&file, "TOKEN=tok-5ecret-value\n").expect("write");
    env.env.push(("PS1".to_owned(), "tsh$ ".to_owned()));
    env.ok(&["new", "quiet", "--bg", "--agent", "shell", "--base", "head", "--env-file", &file.to_string_lossy()]);
    env.ok(&["send", "quiet", "echo token=$TOKEN; echo done-$((40+2))"]);
    let logs = wait_within("the echo in the log", Duration::from_secs(20), || {
        let logs = env.ok(&["logs", "quiet"]);
        logs.contains("done-42").then_some(logs)
    });
    assert!(logs.contains("token=••••••"), "{logs}");
    assert!(!logs.contains("5ecret"), "{logs}");
}
