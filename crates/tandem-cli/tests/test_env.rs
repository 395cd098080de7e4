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

/// `tandem ARGS` run by `bash -c`, so `<(…)` is a real process
/// substitution (`/dev/fd/63`, readable once); returns the output.
fn via_bash(env: &TestEnv, line: &str) -> std::process::Output {
    let tandem = env.command_in(&env.repo, &[]);
    let mut bash = std::process::Command::new("bash");
    bash.env_clear()
        .envs(tandem.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TANDEM_BIN", TestEnv::bin())
        .current_dir(&env.repo)
        .stdin(std::process::Stdio::null())
        .args(["-c", &format!("\"$TANDEM_BIN\" {line}")]);
    bash.output().expect("bash runs")
}

/// What the shell agent of session `name` has in `$VAR`, written to a
/// file in its worktree by a line sent to it (and removed once read).
fn agent_sees(env: &TestEnv, name: &str, var: &str) -> String {
    let out = env.path_of(name).join(format!("{var}.seen"));
    let _ = std::fs::remove_file(&out);
    env.ok(&["send", name, &format!("printf '%s|' \"${var}\" > {var}.tmp && mv {var}.tmp {var}.seen")]);
    let got = wait_within("the shell's answer", Duration::from_secs(20), || std::fs::read_to_string(&out).ok());
    // Not left in the worktree (under TANDEM_HOME, which tests grep).
    std::fs::remove_file(&out).expect("remove");
    got.trim_end_matches('|').to_owned()
}

#[test]
fn respawn_and_fork_keep_the_sessions_environment() {
    let mut env = TestEnv::new();
    env.env.push(("MY_CONFIG_DIR".to_owned(), "/first".to_owned()));
    env.env.push(("ONLY_AT_NEW".to_owned(), "yes".to_owned()));
    env.ok(&["new", "keep", "--bg", "--agent", "shell", "--base", "head"]);
    assert_eq!(env_of(&env, "keep")["MY_CONFIG_DIR"], "/first");

    // Another shell: another value, and a variable `new` did not have.
    env.env.retain(|(k, _)| k != "MY_CONFIG_DIR" && k != "ONLY_AT_NEW");
    env.env.push(("MY_CONFIG_DIR".to_owned(), "/second".to_owned()));
    env.env.push(("ONLY_AT_RESPAWN".to_owned(), "yes".to_owned()));
    env.ok(&["respawn", "keep"]);
    let seen = env_of(&env, "keep");
    assert_eq!(seen["MY_CONFIG_DIR"], "/first", "the session's value, not the caller's");
    assert_eq!(seen["ONLY_AT_NEW"], "yes");
    assert!(seen.get("ONLY_AT_RESPAWN").is_none(), "{seen}");
    assert_eq!(agent_sees(&env, "keep", "MY_CONFIG_DIR"), "/first");

    // A fork from that shell has the source's environment too.
    env.ok(&["fork", "keep", "keep-copy"]);
    let seen = env_of(&env, "keep-copy");
    assert_eq!(seen["MY_CONFIG_DIR"], "/first", "{seen}");
    assert!(seen.get("ONLY_AT_RESPAWN").is_none(), "{seen}");

    // `--env` overrides one variable, and keeps it for the next starts.
    env.ok(&["respawn", "keep", "--env", "MY_CONFIG_DIR=/third"]);
    assert_eq!(env_of(&env, "keep")["MY_CONFIG_DIR"], "/third");
    env.ok(&["respawn", "keep"]);
    assert_eq!(env_of(&env, "keep")["MY_CONFIG_DIR"], "/third", "kept");
    env.ok(&["fork", "keep", "keep-other", "--env", "MY_CONFIG_DIR=/fourth"]);
    assert_eq!(env_of(&env, "keep-other")["MY_CONFIG_DIR"], "/fourth");
    assert_eq!(env_of(&env, "keep")["MY_CONFIG_DIR"], "/third", "the source is unchanged");

    // Asked for explicitly: the caller's environment.
    env.ok(&["respawn", "keep-copy", "--env-from-shell"]);
    let seen = env_of(&env, "keep-copy");
    assert_eq!(seen["MY_CONFIG_DIR"], "/second", "{seen}");
    assert_eq!(seen["ONLY_AT_RESPAWN"], "yes");
    env.ok(&["respawn", "keep-copy"]);
    assert_eq!(env_of(&env, "keep-copy")["ONLY_AT_RESPAWN"], "yes", "recorded as the session's from then on");

    let err = env.fails(&["respawn", "keep", "--env", "NOVALUE"]);
    assert!(err.contains("`NOVALUE` is not KEY=VALUE"), "{err}");
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn an_env_file_from_a_process_substitution_is_read_once_and_never_stored() {
    let mut env = TestEnv::new();
    env.env.push(("SERVICE_API_KEY".to_owned(), "caller-secret-4815162342".to_owned()));
    let out = via_bash(
        &env,
        "new subst --bg --agent shell --base head --env-file <(printf 'TOKEN=subst-secret-1123581321\\n') \
         --env GH_TOKEN=cli-secret-2236067977 --env PLAIN=cli-plain",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(agent_sees(&env, "subst", "TOKEN"), "subst-secret-1123581321");

    // The supervisor kept it in memory: a respawn has it again.
    env.ok(&["respawn", "subst"]);
    assert_eq!(agent_sees(&env, "subst", "TOKEN"), "subst-secret-1123581321");
    assert_eq!(agent_sees(&env, "subst", "SERVICE_API_KEY"), "caller-secret-4815162342");
    assert_eq!(agent_sees(&env, "subst", "GH_TOKEN"), "cli-secret-2236067977");
    assert_eq!(agent_sees(&env, "subst", "PLAIN"), "cli-plain");

    // No secret is in the database or any file tandem keeps.
    for secret in ["subst-secret-1123581321", "caller-secret-4815162342", "cli-secret-2236067977"] {
        let found = files_containing(&env.tandem_home, secret);
        assert!(found.is_empty(), "{secret} is stored in {found:?}");
    }

    // A new supervisor cannot read the file again: respawn says which
    // secrets are missing and how to give them, and changes nothing.
    env.ok(&["daemon", "stop"]);
    env.env.retain(|(k, _)| k != "SERVICE_API_KEY");
    let err = env.fails(&["respawn", "subst"]);
    assert!(err.contains("TOKEN") && err.contains("/dev/fd/63"), "{err}");
    let out = env.tandem(&["respawn", "subst"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("tandem respawn subst --env-file"), "{text}");
    assert_eq!(agent_sees(&env, "subst", "TOKEN"), "subst-secret-1123581321", "the agent still runs");

    let out = via_bash(&env, "respawn subst --env-file <(printf 'TOKEN=given-again-31415926\\n')");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SERVICE_API_KEY"), "a missing secret of the caller's is named: {text}");
    assert!(text.contains("GH_TOKEN") && text.contains("--env KEY=VALUE"), "a missing `--env` secret too: {text}");
    assert_eq!(agent_sees(&env, "subst", "TOKEN"), "given-again-31415926");
    assert_eq!(agent_sees(&env, "subst", "PLAIN"), "cli-plain", "`--env` kept");
    let found = files_containing(&env.tandem_home, "given-again-31415926");
    assert!(found.is_empty(), "stored in {found:?}");
}

#[test]
fn tandem_env_masks_every_secret_unless_asked() {
    let mut env = TestEnv::new();
    let file = env.tmp.path().join("app.env");
    std::fs::write(&file, "PLAIN_NAME=from-the-file-2718281828\n").expect("write");
    env.env.extend(
        [
            ("OPENAI_API_KEY", "sk-caller-1414213562"),
            ("DEPLOY_PASSWORD", "hunter2hunter2hunter2"),
            ("ECHOED", "has sk-caller-1414213562 inside"),
            ("EDITOR", "vi"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env.ok(&["new", "masked", "--bg", "--agent", "shell", "--base", "head", "--env-file", &file.to_string_lossy()]);
    for args in [&["env", "masked"][..], &["env", "masked", "--json"][..]] {
        let shown = env.ok(args);
        for secret in ["sk-caller-1414213562", "hunter2hunter2hunter2", "from-the-file-2718281828"] {
            assert!(!shown.contains(secret), "{args:?} shows {secret}:\n{shown}");
        }
        assert!(shown.contains("EDITOR") && shown.contains("vi"), "{shown}");
        assert!(shown.contains("PLAIN_NAME"), "{shown}");
    }
    let shown = env.ok(&["env", "masked", "--show-secrets"]);
    for secret in ["sk-caller-1414213562", "hunter2hunter2hunter2", "from-the-file-2718281828"] {
        assert!(shown.contains(secret), "--show-secrets shows {secret}:\n{shown}");
    }
}
