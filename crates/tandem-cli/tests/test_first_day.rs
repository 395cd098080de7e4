//! Issue 19, "a new user's first day, without friction": the help
//! (examples everywhere, no blank descriptions, `-V` only on top, one
//! meaning of `-f`), errors in one format, exit codes, `--json` and
//! `--quiet`, man pages, `config init|edit|path|show`, and `tandem shell`,
//! `open` and `run`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{TestEnv, stderr, stdout, wait_for};

/// The visible commands below `tandem`, by their paths (`config show`),
/// read from each command's own `--help` (the `Commands:` list).
fn command_paths(env: &TestEnv) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("-h");
        let help = env.ok(&args);
        let mut in_commands = false;
        for line in help.lines() {
            if line == "Commands:" {
                in_commands = true;
            } else if in_commands && line.starts_with("  ") {
                let name = line.split_whitespace().next().expect("a name");
                if name != "help" {
                    let mut sub = path.clone();
                    sub.push(name.to_owned());
                    todo.push(sub);
                }
            } else {
                in_commands = false;
            }
        }
        paths.push(path);
    }
    paths
}

/// Issue 19: every visible command's `--help` ends with examples, and no
/// command, argument or option goes without a description.
#[test]
fn every_command_has_examples_and_no_blank_description() {
    let env = TestEnv::new();
    let paths = command_paths(&env);
    assert!(paths.len() > 40, "the walk found the tree: {paths:?}");
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("-h");
        let help = env.ok(&args);
        assert!(help.contains("\nExamples:\n  "), "`tandem {}` has no examples:\n{help}", path.join(" "));
        let mut section = "";
        for line in help.lines() {
            if !line.starts_with(' ') {
                section = line;
                continue;
            }
            if matches!(section, "Arguments:" | "Options:" | "Commands:") && !line.trim().is_empty() {
                // `  <NAME>  description`: two spaces part them.
                assert!(
                    line.trim().contains("  "),
                    "`tandem {}`: `{}` has no description",
                    path.join(" "),
                    line.trim()
                );
            }
        }
    }
}

/// Issue 19: `-V` on the top level only.
#[test]
fn version_is_a_top_level_flag_only() {
    let env = TestEnv::new();
    assert!(env.ok(&["-V"]).starts_with("tandem "));
    let out = env.tandem(&["new", "-V"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("unexpected argument '-V'"), "{}", stderr(&out));
}

/// Issue 19: `tandem --help` documents the exit codes and the error
/// format.
#[test]
fn top_help_documents_exit_codes() {
    let env = TestEnv::new();
    let help = env.ok(&["--help"]);
    for line in ["0    success", "1    an error you can act on", "2    usage", "255  a bug in tandem", "docs/errors.md"]
    {
        assert!(help.contains(line), "{line}:\n{help}");
    }
    // A usage error exits 2.
    assert_eq!(env.tandem(&["no-such-command"]).status.code(), Some(2));
}

/// Issue 19: `--agent` names every built-in agent.
#[test]
fn agent_help_lists_every_built_in_agent() {
    let env = TestEnv::new();
    for cmd in ["new", "review"] {
        let help = env.ok(&[cmd, "-h"]);
        let line = help.lines().find(|l| l.contains("--agent")).expect("an --agent line");
        for agent in ["claude,", "claude-structured", "codex", "gemini", "shell", "any command line"] {
            assert!(line.contains(agent), "{cmd}: {agent} in {line}");
        }
    }
}

/// Issue 19: `-f` means `--force` only; following output is `-F`.
#[test]
fn f_is_force_and_capital_f_follows() {
    let env = TestEnv::new();
    assert!(env.ok(&["rm", "-h"]).contains("-f, --force"));
    for cmd in ["logs", "history"] {
        assert!(env.ok(&[cmd, "-h"]).contains("-F, --follow"), "{cmd}");
        assert_eq!(env.tandem(&[cmd, "-f", "x"]).status.code(), Some(2), "{cmd} -f is not a flag");
    }
}

/// Issue 19: an error prints its message, then each cause and each hint
/// on a line of its own.
#[test]
fn errors_put_causes_and_hints_on_lines_of_their_own() {
    let env = TestEnv::new();
    let out = env.tandem(&["attach", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: no session named `ghost` in this repository\nhint: `tandem list` shows the sessions\n"
    );
    // A config file that cannot be read: the reason is the cause.
    let config = env.tandem_home.join("config/config.toml");
    std::fs::create_dir_all(&config).expect("a folder where the file goes");
    let out = env.tandem(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot read {}\ncaused by: Is a directory (os error 21)\nhint: `tandem config path` shows each config file\n",
            config.display()
        )
    );
}

/// Issue 19: a broken layer does not stop `config show`: it names the
/// file and line, still shows the other layers, and does not send the
/// user back to `config show`.
#[test]
fn config_show_works_with_a_broken_layer() {
    let env = TestEnv::new();
    env.user_config("[branch]\nprefx = \"me/\"\n");
    std::fs::write(env.repo.join(".tandem.toml"), "[branch]\nprefix = \"team/\"\n").expect("write");
    let out = env.tandem(&["config", "show"]);
    assert_eq!(out.status.code(), Some(1));
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(text.contains("branch.prefix = \"team/\""), "the repository's layer is shown:\n{text}");
    assert!(text.contains("stop.grace_ms = 5000"), "{text}");
    assert!(err.starts_with("error: ") && err.contains("config/config.toml:2: unknown field `prefx`"), "{err}");
    assert!(!err.contains("config show"), "no loop back to the failing command: {err}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&env.tandem(&["config", "show", "--json"]))).expect("json");
    assert!(json["errors"][0]["path"].as_str().expect("a path").ends_with("config/config.toml"), "{json}");
    assert!(
        json["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["key"] == "branch.prefix" && e["value"] == "\"team/\"")
    );
}

/// Issue 19: `config init` writes every key, commented out with its
/// default; it refuses to overwrite without `--force`.
#[test]
fn config_init_writes_every_key_and_keeps_an_existing_file() {
    let env = TestEnv::new();
    let file = env.tandem_home.join("config/config.toml");
    assert!(env.ok(&["config", "init"]).contains(&file.display().to_string()));
    let text = std::fs::read_to_string(&file).expect("written");
    for key in ["# detach_key = ", "# prefix = \"none\"", "# idle_timeout_secs = 3600", "# command = \"\""] {
        assert!(text.contains(key), "{key}");
    }
    let show = env.ok(&["config", "show"]);
    assert!(show.lines().all(|l| l.ends_with("# default")), "nothing changes a default:\n{show}");
    std::fs::write(&file, "[stop]\ngrace_ms = 1\n").expect("write");
    let err = env.fails(&["config", "init"]);
    assert!(err.contains("already exists; nothing was written") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "[stop]\ngrace_ms = 1\n");
    env.ok(&["config", "init", "--force"]);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);
}

/// Issue 19: `config path` names each layer's file and whether it
/// exists.
#[test]
fn config_path_lists_each_layer() {
    let env = TestEnv::new();
    let user = env.tandem_home.join("config/config.toml");
    let out = env.ok(&["config", "path"]);
    assert!(out.contains(&format!("{:<12} {}  missing", "user", user.display())), "{out}");
    let repo_file = env.repo.join(".tandem.toml");
    assert!(out.contains(&format!("{:<12} {}  missing", "repository", repo_file.display())), "{out}");
    env.ok(&["config", "init"]);
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["config", "path", "--json"])).expect("json");
    assert_eq!(json[0]["layer"], "user");
    assert_eq!(json[0]["exists"], true);
    assert_eq!(json[1]["exists"], false);
}

/// A script at `dir/name` that runs `body` (sh).
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

/// Issue 19: `config edit` runs $EDITOR on the user's file (written
/// first when missing) and checks it afterwards.
#[test]
fn config_edit_runs_the_editor_and_checks_the_file() {
    let env = TestEnv::new();
    let file = env.tandem_home.join("config/config.toml");
    let first = env.tmp.path().join("first");
    let body = format!("cp \"$1\" {}; printf '[stop]\\ngrace_ms = 7\\n' > \"$1\"", first.display());
    let good = script(env.tmp.path(), "good", &body);
    let out = env.command_in(&env.repo, &["config", "edit"]).env("EDITOR", &good).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&first).expect("read").contains("# prefix = \"none\""), "written first");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "[stop]\ngrace_ms = 7\n");
    assert!(env.ok(&["config", "show"]).contains("stop.grace_ms = 7"));
    let bad = script(env.tmp.path(), "bad", "echo 'nonsense = [' >> \"$1\"");
    let out = env.command_in(&env.repo, &["config", "edit"]).env("VISUAL", &bad).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("config.toml:") && stderr(&out).contains("hint: run `tandem config edit` again"));
}

/// Issue 19: man pages from the command tree.
#[test]
fn man_prints_and_writes_pages() {
    let env = TestEnv::new();
    assert!(env.ok(&["man"]).contains(".TH tandem 1"));
    let page = env.ok(&["man", "config", "show"]);
    assert!(page.contains(".TH tandem-config-show 1"), "{page}");
    let dir = env.tmp.path().join("man1");
    assert!(env.ok(&["man", "--dir", &dir.display().to_string()]).starts_with("wrote "));
    for page in ["tandem.1", "tandem-new.1", "tandem-task-show.1", "tandem-man.1"] {
        assert!(dir.join(page).is_file(), "{page}");
    }
    assert!(!dir.join("tandem-host.1").exists(), "hidden commands have no page");
    let err = env.fails(&["man", "nope"]);
    assert!(err.contains("no command `tandem nope`"), "{err}");
}

/// A shell session, started in the background.
fn shell_session(env: &TestEnv, name: &str) -> std::path::PathBuf {
    env.ok(&["new", name, "--bg", "--agent", "shell", "--base", "head"]);
    env.path_of(name)
}

/// Issue 19: `tandem run NAME -- CMD` runs in the worktree with the
/// session's environment and exits with the command's code.
#[test]
fn run_passes_the_exit_code_through() {
    let env = TestEnv::new();
    let wt = shell_session(&env, "runner");
    let out = env.tandem(&["run", "runner", "--", "sh", "-c", "pwd; echo \"$TANDEM_SESSION $TANDEM_BRANCH\"; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\nrunner runner\n", wt.display()));
    assert_eq!(env.tandem(&["run", "runner", "--", "true"]).status.code(), Some(0));
    let err = env.fails(&["run", "runner", "--", "no-such-program-here"]);
    assert!(err.contains("cannot run `no-such-program-here`"), "{err}");
    assert_eq!(env.tandem(&["run", "runner"]).status.code(), Some(2), "the command is required");
}

/// Issue 19: `tandem shell NAME` starts $SHELL in the worktree with the
/// session's environment.
#[test]
fn shell_starts_the_users_shell_in_the_worktree() {
    let env = TestEnv::new();
    let wt = shell_session(&env, "shelly");
    let record = env.tmp.path().join("record");
    let fake = script(env.tmp.path(), "fake-shell", &format!("echo \"$PWD $TANDEM_SESSION\" > {}", record.display()));
    let out = env.command_in(&env.repo, &["shell", "shelly"]).env("SHELL", &fake).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&record).expect("the shell ran"), format!("{} shelly\n", wt.display()));
}

/// Issue 19: `tandem open NAME` runs `open.command`, else $VISUAL, else
/// $EDITOR, on the worktree; a repository cannot choose the command.
#[test]
fn open_runs_the_editor_on_the_worktree() {
    let env = TestEnv::new();
    let wt = shell_session(&env, "opened");
    let record = env.tmp.path().join("args");
    let editor = script(env.tmp.path(), "editor", &format!("echo \"editor $*\" > {}", record.display()));
    let out = env.command_in(&env.repo, &["open", "opened"]).env("EDITOR", &editor).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&record).expect("ran"), format!("editor {}\n", wt.display()));
    let code = script(env.tmp.path(), "code", &format!("echo \"code $*\" > {}", record.display()));
    env.user_config(&format!("[open]\ncommand = \"{code} --wait\"\n"));
    // A repository's choice is dropped: the user's own config rules.
    std::fs::write(env.repo.join(".tandem.toml"), "[open]\ncommand = \"touch /tmp/owned-by-repo\"\n").expect("write");
    let out = env.command_in(&env.repo, &["open", "opened"]).env("EDITOR", &editor).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&record).expect("ran"), format!("code --wait {}\n", wt.display()));
    std::fs::remove_file(env.repo.join(".tandem.toml")).expect("rm");
    env.user_config("");
    let err = env.fails(&["open", "opened"]);
    assert!(err.contains("no editor"), "{err}");
}

/// Issue 19: `merge --squash` of changes that add up to nothing says so
/// and changes nothing (it printed ``error: `git commit …` failed:``
/// with an empty reason).
#[test]
fn squash_with_nothing_to_squash_changes_nothing() {
    let env = TestEnv::new();
    let wt = shell_session(&env, "noop");
    std::fs::write(wt.join("a.txt"), "a\n").expect("write");
    env.git_in(&wt, &["add", "a.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "add a"]);
    env.git_in(&wt, &["rm", "-q", "a.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "remove a"]);
    let before = (env.git(&["rev-parse", "main"]), env.git(&["status", "--porcelain"]), env.git(&["stash", "list"]));
    let err = env.fails(&["merge", "noop", "--squash"]);
    assert!(err.contains("nothing to squash: the branch of noop has no changes against main"), "{err}");
    assert!(err.contains("`tandem diff noop`"), "{err}");
    let after = (env.git(&["rev-parse", "main"]), env.git(&["status", "--porcelain"]), env.git(&["stash", "list"]));
    assert_eq!(before, after);
}

/// Issue 19: `send` and `interrupt` say what they did, as `stop` does.
#[test]
fn send_and_interrupt_confirm() {
    let env = TestEnv::new();
    shell_session(&env, "talk");
    assert_eq!(env.ok(&["send", "talk", "echo hello there"]), "sent a prompt of 3 word(s) to session talk\n");
    assert_eq!(env.ok(&["interrupt", "talk"]), "interrupted the turn of session talk; its agent keeps running\n");
}

/// Issue 19: the commands that report print JSON with `--json`.
#[test]
fn reporting_commands_print_json() {
    let env = TestEnv::new();
    let made: serde_json::Value =
        serde_json::from_str(&env.ok(&["new", "jay", "--json", "--agent", "shell", "--base", "head"])).expect("json");
    assert_eq!((made["name"].as_str(), made["branch"].as_str()), (Some("jay"), Some("jay")));
    assert_eq!(made["path"].as_str().map(Path::new), Some(env.path_of("jay").as_path()));
    let forked: serde_json::Value = serde_json::from_str(&env.ok(&["fork", "jay", "--json"])).expect("json");
    assert_eq!(forked["name"], "jay-fork");
    let status: serde_json::Value = serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).expect("json");
    assert_eq!(status["running"], true);
    assert!(status["pid"].as_i64().is_some(), "{status}");
    let doctor: serde_json::Value = serde_json::from_str(&env.ok(&["doctor", "--json"])).expect("json");
    assert!(doctor["findings"].as_array().is_some_and(Vec::is_empty), "{doctor}");
    env.ok(&["daemon", "stop"]);
    let out = env.tandem(&["daemon", "status", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(status["running"], false);
}

/// Issue 19: `--quiet` drops notes, wherever it is given.
#[test]
fn quiet_drops_notes() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let odd = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let new = |name: &str, quiet: bool| {
        let mut args = vec!["new", name, "--bg", "--agent", "shell", "--base", "head"];
        if quiet {
            args.push("--quiet");
        }
        env.command_in(&env.repo, &args).env("ODD_VALUE", odd).output().expect("run")
    };
    let loud = new("loud", false);
    assert!(stderr(&loud).contains("note: `ODD_VALUE` is left out"), "{}", stderr(&loud));
    let quiet = new("hush", true);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "");
    wait_for("both sessions listed", || (env.sessions().len() == 2).then_some(()));
}
