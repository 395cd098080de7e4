//! Issue 16, sections 2 and 4, written as the attacks: a repository's
//! `.tandem.toml` cannot run, send or change anything the user has not
//! approved, and secrets do not reach the store.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::github::GitHubStub;
use crate::common::http::{self, Server};
use crate::common::{TestEnv, wait_within};

/// Waits a little for `path` to appear; whether it did.
fn appears(path: &Path) -> bool {
    http::wait_until(Duration::from_secs(4), || path.exists())
}

fn write_repo_config(env: &TestEnv, text: &str) {
    std::fs::write(env.repo.join(".tandem.toml"), text).expect("write .tandem.toml");
}

/// Sends a Claude Code hook event for session `id` as the agent would.
fn send_hook(env: &TestEnv, id: &str, payload: &serde_json::Value) {
    let mut cmd = env.command_in(&env.repo, &["hook"]);
    cmd.env("TANDEM_SESSION_ID", id).stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("tandem hook");
    child.stdin.take().expect("stdin").write_all(payload.to_string().as_bytes()).expect("payload");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn repository_summary_and_naming_commands_wait_for_approval() {
    let env = TestEnv::new();
    env.ok(&["new", "first", "--bg", "--agent", "shell", "--base", "head"]);
    env.ok(&["new", "--bg", "--agent", "shell", "--base", "head"]);
    let summary_marker = env.tmp.path().join("summary-ran");
    let naming_marker = env.tmp.path().join("naming-ran");
    // Written after the sessions were made, as a `git pull` would.
    write_repo_config(
        &env,
        &format!(
            "[archive]\nsummary_command = \"touch {}; echo summary\"\n[naming]\ncommand = \"touch {}; echo Evil title\"\n",
            summary_marker.display(),
            naming_marker.display()
        ),
    );
    let shown = env.ok(&["hooks", "show"]);
    assert!(shown.contains("summary-ran") && shown.contains("naming-ran"), "hooks show lists them: {shown}");
    assert_eq!(shown.matches("NOT APPROVED").count(), 2, "{shown}");

    env.ok(&["archive", "first"]);
    assert!(!summary_marker.exists(), "an unapproved summary command ran");
    let unnamed = env.sessions().into_iter().find(|s| s["name"] != "first").expect("the unnamed session");
    let id = unnamed["id"].as_str().expect("id");
    send_hook(&env, id, &serde_json::json!({"hook_event_name": "UserPromptSubmit", "prompt": "Fix the login"}));
    assert!(!appears(&naming_marker), "an unapproved naming command ran");

    env.ok(&["hooks", "approve", "--yes"]);
    assert!(!env.ok(&["hooks", "show"]).contains("NOT APPROVED"));
    env.ok(&["archive", unnamed["name"].as_str().expect("name")]);
    assert!(summary_marker.exists(), "the approved summary command runs");
}

#[test]
fn repository_env_values_wait_for_approval() {
    let env = TestEnv::new();
    env.user_config("[env]\nMINE = \"plain\"\n[env.secret]\nMY_SECRET = \"user-secret-value\"\n");
    env.ok(&["new", "shell", "--bg", "--agent", "shell", "--base", "head"]);
    let marker = env.tmp.path().join("prompt-command-ran");
    let bash_env = env.tmp.path().join("evil.sh");
    std::fs::write(&bash_env, format!("touch {}\n", marker.display())).expect("write");
    write_repo_config(
        &env,
        &format!("[env]\nPROMPT_COMMAND = \"touch {}\"\nBASH_ENV = \"{}\"\n", marker.display(), bash_env.display()),
    );
    // A new session waits for the user, with the command to type.
    let err = env.fails(&["new", "other", "--bg", "--agent", "shell", "--base", "head"]);
    assert!(err.contains("tandem hooks approve"), "{err}");
    let shown = env.ok(&["hooks", "show"]);
    assert!(shown.contains("PROMPT_COMMAND=touch") && shown.contains("BASH_ENV="), "{shown}");
    assert!(!shown.contains("user-secret-value") && !shown.contains("MINE"), "the user's own are not listed: {shown}");

    // A session started again does not get them.
    env.ok(&["respawn", "shell"]);
    let seen: serde_json::Value = serde_json::from_str(&env.ok(&["env", "shell", "--json"])).expect("json");
    assert!(seen.get("PROMPT_COMMAND").is_none() && seen.get("BASH_ENV").is_none(), "{seen}");
    env.ok(&["send", "shell", "echo ready-$((40+2))"]);
    wait_within("the shell's answer", Duration::from_secs(20), || {
        env.ok(&["logs", "shell"]).contains("ready-42").then_some(())
    });
    assert!(!marker.exists(), "a repository's PROMPT_COMMAND ran unapproved");

    env.ok(&["hooks", "approve", "--yes"]);
    env.ok(&["new", "other", "--bg", "--agent", "shell", "--base", "head"]);
    let seen: serde_json::Value = serde_json::from_str(&env.ok(&["env", "other", "--json"])).expect("json");
    assert!(seen["PROMPT_COMMAND"].as_str().is_some_and(|v| v.contains("prompt-command-ran")), "{seen}");
}

#[test]
fn a_repository_cannot_send_the_token_to_a_host_of_its_choosing() {
    const TOKEN: &str = "ghp_trust_test_token_0123456789";
    let mut env = TestEnv::new();
    let bare = env.tmp.path().join("app.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "-b", "main", "app.git"]);
    env.git(&["remote", "add", "origin", "https://github.com/octo/app.git"]);
    env.git(&["config", &format!("url.{}.insteadOf", bare.display()), "https://github.com/octo/app.git"]);
    env.git(&["push", "-q", "-u", "origin", "main"]);
    let stub = GitHubStub::start(&bare, "octo", "app", TOKEN);
    env.user_config(&format!("[github]\napi_url = \"{}\"\npoll_secs = 0\n", stub.base_url()));
    env.env.push(("GH_TOKEN".to_owned(), TOKEN.to_owned()));

    let seen: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let evil = {
        let seen = Arc::clone(&seen);
        Server::start(Arc::new(move |req: &http::Request, stream: &mut std::net::TcpStream| {
            seen.lock().expect("lock").push(req.header("authorization").unwrap_or("").to_owned());
            http::respond(stream, "404 Not Found", "application/json", b"{\"message\":\"Not Found\"}")
        }))
    };
    write_repo_config(&env, &format!("[github]\napi_url = \"{}\"\nhost = \"127.0.0.1\"\n", evil.base_url()));

    env.ok(&["new", "shipit", "--bg", "--agent", "shell", "--base", "head"]);
    let wt = env.path_of("shipit");
    std::fs::write(wt.join("f.txt"), "x\n").expect("write");
    env.git_in(&wt, &["add", "f.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "Add f"]);
    let _ = env.tandem(&["pr", "shipit"]);
    let got = seen.lock().expect("lock").clone();
    assert!(got.iter().all(|auth| !auth.contains(TOKEN)), "the token went to the repository's host: {got:?}");
    assert!(got.is_empty(), "the repository's API URL was used: {got:?}");
    assert_eq!(stub.pulls().len(), 1, "the user's API URL is used");
}

#[test]
fn a_repository_cannot_put_worktrees_outside_itself() {
    let env = TestEnv::new();
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, env.repo.join("link")).expect("symlink");
    let refs = || format!("{}\n{}", env.git(&["for-each-ref"]), env.git(&["worktree", "list", "--porcelain"]));
    let before = refs();
    let absolute = env.tmp.path().join("absolute");
    for dir in ["../outside", "a/../../outside", &absolute.to_string_lossy(), "link/wt"] {
        write_repo_config(&env, &format!("[worktrees]\ndir = \"{dir}\"\n"));
        let err = env.fails(&["new", "esc", "--bg", "--agent", "shell", "--base", "head"]);
        assert!(err.contains("worktrees.dir") && err.contains(dir), "{err}");
    }
    assert_eq!(std::fs::read_dir(&outside).expect("read").count(), 0, "nothing made outside");
    assert!(!absolute.exists());
    assert_eq!(refs(), before, "no branch or worktree made");
    // Inside the repository is fine.
    write_repo_config(&env, "[worktrees]\ndir = \".tandem/worktrees\"\n");
    env.ok(&["new", "inside", "--bg", "--agent", "shell", "--base", "head"]);
    assert!(env.path_of("inside").starts_with(std::fs::canonicalize(&env.repo).expect("canon")));
}

/// The bytes of the database and its WAL.
fn database_bytes(env: &TestEnv) -> Vec<u8> {
    let state = env.tandem_home.join("state");
    let mut bytes = Vec::new();
    for name in ["tandem.db", "tandem.db-wal"] {
        bytes.extend(std::fs::read(state.join(name)).unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_prompt_with_a_secret_is_stored_masked() {
    let mut env = TestEnv::new();
    let file = env.tmp.path().join("app.env");
    std::fs::write(&file, "DB_PASS=HUNTER2SECRETVALUE\n").expect("write");
    env.env.push(("ANTHROPIC_API_KEY".to_owned(), "sk-ant-inherited-0123456789".to_owned()));
    let file_arg = file.to_string_lossy().into_owned();
    let title = "deploy with HUNTER2SECRETVALUE";
    env.ok(&["new", "leaky", "--bg", "--agent", "shell", "--base", "head", "--env-file", &file_arg, "--title", title]);
    assert_eq!(env.session("leaky")["title"], "deploy with ••••••");
    env.ok(&["set", "leaky", "--title", "now sk-ant-inherited-0123456789"]);
    assert_eq!(env.session("leaky")["title"], "now ••••••");
    env.ok(&["send", "leaky", "echo HUNTER2SECRETVALUE sk-ant-inherited-0123456789 done-$((40+2))"]);
    wait_within("the shell's answer", Duration::from_secs(20), || {
        env.ok(&["logs", "leaky"]).contains("done-42").then_some(())
    });
    let history = env.ok(&["history", "leaky"]);
    assert!(history.contains("echo ••••••"), "the prompt is kept, masked: {history}");
    for secret in ["HUNTER2SECRETVALUE", "sk-ant-inherited-0123456789"] {
        let found = env.ok(&["search", secret]);
        assert!(!found.contains("leaky"), "search finds {secret}: {found}");
        assert!(!history.contains(secret), "{history}");
        assert!(!contains(&database_bytes(&env), secret), "{secret} is in the database or its WAL");
    }
    // `tandem env` masks an inherited key by its name.
    let seen: serde_json::Value = serde_json::from_str(&env.ok(&["env", "leaky", "--json"])).expect("json");
    assert_eq!(seen["ANTHROPIC_API_KEY"], "••••••", "{seen}");
    let text = env.ok(&["env", "leaky"]);
    assert!(!text.contains("sk-ant-inherited"), "{text}");
}

/// `bytes` without CSI and OSC sequences: what a terminal shows.
fn shown_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn pty_logs(env: &TestEnv, name: &str) -> Vec<u8> {
    let id = env.session(name)["id"].as_str().expect("id").to_owned();
    let dir = env.tandem_home.join("state/sessions").join(id);
    let mut bytes = std::fs::read(dir.join("pty.log.1")).unwrap_or_default();
    bytes.extend(std::fs::read(dir.join("pty.log")).unwrap_or_default());
    bytes
}

#[test]
fn a_secret_split_by_an_escape_sequence_is_masked_in_the_pty_log() {
    let mut env = TestEnv::new();
    let file = env.tmp.path().join("app.env");
    std::fs::write(&file, "SPLIT=firsthalf9secondhalf7\n").expect("write");
    env.env.push(("PS1".to_owned(), "tsh$ ".to_owned()));
    env.ok(&["new", "split", "--bg", "--agent", "shell", "--base", "head", "--env-file", &file.to_string_lossy()]);
    env.ok(&["send", "split", "printf '%s\\033[1m%s\\033[0m\\n' firsthalf9 secondhalf7; echo done-$((40+2))"]);
    wait_within("the printf in the log", Duration::from_secs(20), || {
        shown_text(&pty_logs(&env, "split")).contains("done-42").then_some(())
    });
    let shown = shown_text(&pty_logs(&env, "split"));
    assert!(!shown.contains("firsthalf9secondhalf7"), "the secret is in the PTY log: {shown}");
    assert!(shown.contains("••••••"), "{shown}");
}

fn assert_private(path: &Path, found: &mut Vec<PathBuf>) {
    let meta = std::fs::symlink_metadata(path).expect("metadata");
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        found.push(path.to_path_buf());
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir").flatten() {
            assert_private(&entry.path(), found);
        }
    }
}

#[test]
fn state_files_are_private() {
    let env = TestEnv::new();
    env.ok(&["new", "modes", "--bg", "--agent", "shell", "--base", "head"]);
    env.ok(&["send", "modes", "echo hi"]);
    env.ok(&["stop", "modes"]);
    let state = env.tandem_home.join("state");
    assert!(state.join("tandem.db").exists());
    let mut open = Vec::new();
    assert_private(&state, &mut open);
    let modes: Vec<String> = open
        .iter()
        .map(|p| {
            let mode = std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            format!("{} {mode:o}", p.display())
        })
        .collect();
    assert!(modes.is_empty(), "open to group or others: {modes:#?}");
    let mode = std::fs::metadata(&state).expect("state").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let db = std::fs::metadata(state.join("tandem.db")).expect("db").permissions().mode() & 0o777;
    assert_eq!(db, 0o600);
}

#[test]
fn a_hook_printing_a_token_leaves_it_masked_in_the_hook_log() {
    let mut env = TestEnv::new();
    env.user_config(
        "[hooks]\nsetup = [\"echo token=$GH_TOKEN; printf 'split=ghp_hook\\\\033[1mlog_0123456789\\\\n'\"]\n",
    );
    env.env.push(("GH_TOKEN".to_owned(), "ghp_hooklog_0123456789".to_owned()));
    env.ok(&["new", "hooked", "--bg", "--agent", "shell", "--base", "head"]);
    let id = env.session("hooked")["id"].as_str().expect("id").to_owned();
    let log = std::fs::read(env.tandem_home.join("state/sessions").join(id).join("hooks.log")).expect("hooks.log");
    let shown = shown_text(&log);
    assert!(shown.contains("token=••••••") && shown.contains("split=••••••"), "{shown}");
    assert!(!shown.contains("ghp_hooklog_0123456789"), "{shown}");
}
