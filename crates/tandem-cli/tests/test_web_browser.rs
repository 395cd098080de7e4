//! The web dashboard end to end in a real Chromium (chromedriver,
//! `common::browser`): `tandem serve` under the test's `TANDEM_HOME`,
//! real sessions, the real Claude Code against the scripted stand-in for
//! the permission flow. The pages are checked through the ids and data
//! attributes they keep for these tests (`tr[data-session]`, `.asking`,
//! `button[data-action]`, `#terminal`, `#take-control`, `#diff-files`,
//! `#confirm`, …), never through their layout or wording.
//!
//! "Within 1 s" is measured from the command's return (or from the moment
//! the CLI sees the change) to the DOM showing it, polled through
//! WebDriver against a deadline.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::anthropic::{MessagesStub, Step, use_claude};
use crate::common::browser::{Browser, request};
use crate::common::web::Serve;
use crate::common::{TestEnv, agent_and_env, hook_event, wait_within};

/// How long the dashboard may take to show a change.
const LIVE: Duration = Duration::from_secs(1);
/// Enter, as WebDriver sends it.
const ENTER: &str = "\u{e007}";

/// The URL that logs a browser in to `serve`.
fn login(serve: &Serve) -> String {
    format!("{}/?token={}", serve.base, serve.token)
}

/// `path` on `serve`.
fn url(serve: &Serve, path: &str) -> String {
    format!("{}{path}", serve.base)
}

/// `env`'s server and a browser logged in to it (at the dashboard), or
/// `None` when the test is skipped.
fn open(env: &TestEnv) -> Option<(Serve, Browser)> {
    let browser = Browser::start()?;
    let serve = Serve::start(env);
    browser.goto(&login(&serve));
    // The login URL sets the cookie and leaves the token out of the address.
    let at = browser.js("return location.href", vec![]);
    assert_eq!(at, json!(url(&serve, "/")), "the token is not left in the address bar");
    // The first snapshot is drawn: rows, or the sentence for none.
    browser.wait_js(
        "the dashboard's first rows",
        crate::common::WAIT,
        "const empty = document.querySelector('#empty');
         return document.querySelector('tr[data-session]') !== null || (empty !== null && !empty.hidden);",
        vec![],
    );
    Some((serve, browser))
}

/// A shell session `name`, started in the background; answers its id.
fn shell(env: &TestEnv, name: &str) -> String {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    env.session(name)["id"].as_str().expect("id").to_owned()
}

/// The script that answers the row of session `arguments[0]` (its group,
/// text, `.asking` and link) once it is in group `arguments[1]`
/// (any group when null), else null.
const ROW: &str = r#"
const row = document.querySelector(`tr[data-session="${CSS.escape(arguments[0])}"]`);
if (!row) return null;
const group = row.closest("section.group");
const key = group ? group.getAttribute("data-group") : null;
if (arguments[1] !== null && key !== arguments[1]) return null;
const text = (sel) => { const e = row.querySelector(sel); return e ? e.textContent : null; };
const link = row.querySelector("a.name");
return { group: key, id: row.getAttribute("data-id"), text: row.textContent, state: text(".state"),
         asking: text(".asking"), href: link ? link.getAttribute("href") : null };
"#;

/// Waits (for at most `within`) until the dashboard shows session `name`
/// in group `group` (any when `None`); answers the row.
fn row(browser: &Browser, name: &str, group: Option<&str>, within: Duration) -> Value {
    browser.wait_js(&format!("row {name} in group {group:?}"), within, ROW, vec![json!(name), json!(group)])
}

/// What the xterm.js terminal on the session page shows now (its rows,
/// or its screen-reader tree when the rows are drawn on a canvas).
const TERMINAL_TEXT: &str = r##"
const t = document.querySelector("#terminal");
if (!t) return "";
const rows = t.querySelector(".xterm-rows") || t.querySelector(".xterm-accessibility-tree");
return (rows || t).innerText;
"##;

#[test]
fn a_new_session_shows_on_the_dashboard_within_a_second_and_then_its_question() {
    let env = TestEnv::new();
    let Some((_serve, browser)) = open(&env) else { return };

    env.ok(&["new", "appears", "--bg", "--agent", "shell"]);
    let returned = Instant::now();
    let r = row(&browser, "appears", None, LIVE);
    let took = returned.elapsed();
    let id = env.session("appears")["id"].as_str().expect("id").to_owned();
    assert_eq!(r["href"], json!(format!("/session/{id}")), "{r}");
    assert_eq!(r["id"], json!(id), "{r}");
    assert!(took <= LIVE, "shown after {took:?}");

    // The agent asks permission (its hook, as Claude Code sends it): the
    // row moves to the needs-input group with the question and the
    // buttons (a shell's state is inferred, but a hook-reported ask is a
    // permission all the same).
    let asked = json!({
        "hook_event_name": "PermissionRequest",
        "tool_name": "Bash",
        "tool_input": { "command": "rm -rf build/" },
    });
    hook_event(&env, &id, &asked);
    let returned = Instant::now();
    let r = browser.wait_js(
        "the question on the row",
        LIVE,
        &format!(
            "const r = (function() {{ {ROW} }}).apply(null, arguments); return r && (r.asking || '').includes('Bash: rm -rf build/') ? r : null;"
        ),
        vec![json!("appears"), json!("needs_input")],
    );
    assert!(returned.elapsed() <= LIVE, "{r}");
}

#[test]
fn approving_from_the_page_lets_claude_go_on() {
    let Some((claude, mut env)) = agent_and_env("claude") else { return };
    let stub = MessagesStub::start(vec![
        Step::tool(
            "Bash",
            json!({ "command": "echo approved-from-the-page > proof.txt", "description": "Leave proof" }),
        ),
        Step::text("The proof is written."),
    ]);
    // Only Write is allowed: Bash needs a decision.
    use_claude(&mut env, &claude, &stub, &["Write"]);
    let Some((_serve, browser)) = open(&env) else { return };

    env.ok(&["new", "asker", "--bg", "-p", "Leave proof that you ran"]);
    row(&browser, "asker", None, LIVE);
    // The moment the CLI sees it waiting, then the page within 1 s.
    wait_within("asker to ask", Duration::from_secs(120), || {
        (env.session("asker")["state"] == "needs-input").then_some(())
    });
    let seen = Instant::now();
    let r = row(&browser, "asker", Some("needs_input"), LIVE);
    assert!(seen.elapsed() <= LIVE);
    let first = browser.js("return document.querySelector('section.group').getAttribute('data-group')", vec![]);
    assert_eq!(first, json!("needs_input"), "needs-input comes first");
    assert!(
        r["asking"].as_str().unwrap_or_default().contains("echo approved-from-the-page > proof.txt"),
        "the question is shown: {r}"
    );

    // It waits for a permission: approve and deny are offered.
    let buttons = browser.js(
        "return [...document.querySelectorAll('tr[data-session=asker] button[data-action]')].map(b => b.dataset.action)",
        vec![],
    );
    assert!(
        buttons.as_array().is_some_and(|b| b.contains(&json!("approve")) && b.contains(&json!("deny"))),
        "{buttons}"
    );
    browser.click("tr[data-session=asker] button[data-action=approve]");
    let path = env.path_of("asker");
    wait_within("the approved command's output", Duration::from_secs(60), || {
        std::fs::read_to_string(path.join("proof.txt")).ok().filter(|t| t == "approved-from-the-page\n")
    });
    // The turn ends and the page shows it idle, the question gone.
    let r = row(&browser, "asker", Some("idle"), Duration::from_secs(60));
    assert!(r["asking"].is_null() || r["asking"] == "", "{r}");
    assert!(env.ok(&["history", "asker"]).contains("approved: Bash: echo approved-from-the-page > proof.txt"));
}

#[test]
fn the_live_terminal_takes_typing_only_after_take_control_and_echoes_it() {
    let env = TestEnv::new();
    let id = shell(&env, "term");
    let Some((serve, browser)) = open(&env) else { return };
    browser.goto(&url(&serve, &format!("/session/{id}")));
    browser.wait_js(
        "the shell's prompt in the terminal",
        crate::common::WAIT,
        &format!("const t = (function() {{ {TERMINAL_TEXT} }})(); return t.includes('tsh$') ? t : null;"),
        vec![],
    );
    // Read-only until the user takes control.
    browser.type_into("#terminal textarea", &format!("echo read-only-$((20+1)){ENTER}"));
    assert_eq!(browser.wait_text("button#take-control").trim(), "Take control");
    // The terminal keeps the keyboard until the user clicks elsewhere.
    browser.js("document.activeElement.blur()", vec![]);
    browser.click("button#take-control");
    browser.wait_js(
        "the button to say Release",
        crate::common::WAIT,
        "const b = document.querySelector('button#take-control'); return b && b.textContent.trim() === 'Release';",
        vec![],
    );
    browser.type_into("#terminal textarea", &format!("echo typed-$((6*7)){ENTER}"));
    let shown = browser.wait_js(
        "the echo in the terminal",
        crate::common::WAIT,
        &format!("const t = (function() {{ {TERMINAL_TEXT} }})(); return t.includes('typed-42') ? t : null;"),
        vec![],
    );
    let shown = shown.as_str().unwrap_or_default();
    assert!(!shown.contains("read-only-21"), "typing without control reached the shell:\n{shown}");
    // The same bytes reached the real session.
    assert!(env.ok(&["logs", "term"]).contains("typed-42"));
}

#[test]
fn the_session_page_shows_the_diff() {
    let env = TestEnv::new();
    let id = shell(&env, "differ");
    let path = env.path_of("differ");
    std::fs::write(path.join("notes.txt"), "first line\nadded-by-the-agent\n").expect("write");
    env.git_in(&path, &["add", "notes.txt"]);
    env.git_in(&path, &["commit", "-q", "-m", "Add notes"]);
    let Some((serve, browser)) = open(&env) else { return };
    browser.goto(&url(&serve, &format!("/session/{id}")));
    browser.wait_js(
        "notes.txt in the diff's files",
        crate::common::WAIT,
        "const e = document.querySelector('#diff-files'); return e && e.textContent.includes('notes.txt');",
        vec![],
    );
    let hunks = browser.wait_text("#diff-hunks");
    assert!(hunks.contains("added-by-the-agent"), "{hunks}");
    // The other view shows the same lines.
    browser.click("button#diff-mode");
    let hunks = browser.wait_text("#diff-hunks");
    assert!(hunks.contains("added-by-the-agent"), "{hunks}");
}

#[test]
fn removing_a_session_with_unsaved_work_shows_the_refusal_and_force_removes_it() {
    let env = TestEnv::new();
    let id = shell(&env, "unsaved");
    std::fs::write(env.path_of("unsaved").join("draft.txt"), "not committed\n").expect("write");
    // The sentence `tandem rm` refuses with (a refusal changes nothing).
    let err = env.fails(&["rm", "unsaved"]);
    let sentence = err.strip_prefix("error: ").unwrap_or(&err).split("; ").next().expect("a sentence").to_owned();
    assert!(sentence.contains("1 untracked file"), "{sentence}");

    let Some((serve, browser)) = open(&env) else { return };
    browser.goto(&url(&serve, &format!("/session/{id}")));
    browser.click("button[data-action=remove]");
    let confirm = browser.wait_js(
        "the refusal in #confirm",
        crate::common::WAIT,
        "const e = document.querySelector('#confirm'); return e && !e.hidden && e.checkVisibility() && e.innerText.includes(arguments[0]) ? e.innerText : null;",
        vec![json!(sentence)],
    );
    assert!(confirm.as_str().unwrap_or_default().contains(&sentence), "{confirm}");
    assert!(env.path_of("unsaved").join("draft.txt").exists(), "the refused remove changed nothing");

    browser.click("#confirm button[data-action=remove-force]");
    wait_within("the session to be removed", crate::common::WAIT, || {
        (!env.sessions().iter().any(|s| s["name"] == "unsaved")).then_some(())
    });
}

#[test]
fn on_a_phone_the_list_and_the_approve_button_are_usable() {
    let Some((claude, mut env)) = agent_and_env("claude") else { return };
    // A long command without spaces to break at: the row must not widen
    // the page.
    let command = format!("echo tapped-on-a-phone > proof.txt # {}", "a-very-long-argument-".repeat(6));
    let stub = MessagesStub::start(vec![
        Step::tool("Bash", json!({ "command": command, "description": "Leave proof" })),
        Step::text("Done on the phone."),
    ]);
    use_claude(&mut env, &claude, &stub, &["Write"]);
    shell(&env, "phone-quiet");
    env.ok(&["new", "phone-asks-a-rather-long-question-name", "--bg", "-p", "Leave proof"]);
    let Some((serve, browser)) = open(&env) else { return };
    browser.viewport(390, 844, true);
    browser.goto(&url(&serve, "/"));
    row(&browser, "phone-asks-a-rather-long-question-name", Some("needs_input"), Duration::from_secs(120));
    row(&browser, "phone-quiet", None, crate::common::WAIT);

    let layout = browser.js(
        r#"
        const button = document.querySelector("tr[data-session='phone-asks-a-rather-long-question-name'] button[data-action=approve]");
        const deny = document.querySelector("tr[data-session='phone-asks-a-rather-long-question-name'] button[data-action=deny]");
        const name = document.querySelector("tr[data-session='phone-quiet'] a.name");
        const box = (e) => { if (!e) return null; e.scrollIntoView({block: "center", inline: "nearest"});
          const r = e.getBoundingClientRect();
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          return { left: r.left, right: r.right, height: r.height, width: r.width, covered: !(hit && (hit === e || e.contains(hit))) }; };
        return { width: innerWidth, scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth,
                 approve: box(button), deny: box(deny), name: box(name), scrollX: scrollX };
        "#,
        vec![],
    );
    browser.js("window.scrollTo(0, 0)", vec![]);
    browser.screenshot("web-phone-dashboard", None);
    assert_eq!(layout["width"], json!(390), "{layout}");
    assert!(layout["scroll"].as_f64() <= Some(390.0), "the page scrolls sideways: {layout}");
    assert!(layout["body"].as_f64() <= Some(390.0), "the page scrolls sideways: {layout}");
    assert_eq!(layout["scrollX"], json!(0), "{layout}");
    for what in ["approve", "deny", "name"] {
        let b = &layout[what];
        assert!(b.is_object(), "no {what} on the phone: {layout}");
        assert!(
            b["left"].as_f64() >= Some(0.0) && b["right"].as_f64() <= Some(390.0),
            "{what} is off screen: {layout}"
        );
        assert_eq!(b["covered"], json!(false), "{what} is covered: {layout}");
    }
    for what in ["approve", "deny"] {
        assert!(layout[what]["height"].as_f64() >= Some(44.0), "{what} is smaller than a finger: {layout}");
    }
    // A tap on approve: the agent goes on.
    browser.click("tr[data-session='phone-asks-a-rather-long-question-name'] button[data-action=approve]");
    let path = env.path_of("phone-asks-a-rather-long-question-name");
    wait_within("the approved command's output", Duration::from_secs(60), || {
        std::fs::read_to_string(path.join("proof.txt")).ok().filter(|t| t == "tapped-on-a-phone\n")
    });
    // A tap on a name opens the session page.
    browser.click("tr[data-session='phone-quiet'] a.name");
    let at = browser.wait_js(
        "the session page",
        crate::common::WAIT,
        "return location.pathname.startsWith('/session/') ? location.pathname : null",
        vec![],
    );
    assert_eq!(at, json!(format!("/session/{}", env.session("phone-quiet")["id"].as_str().expect("id"))));
}

#[test]
fn a_script_in_a_title_or_in_agent_output_renders_as_text() {
    let env = TestEnv::new();
    let id = shell(&env, "xss");
    let title = "<script>window.pwned=1</script>\u{1b}[31m";
    env.ok(&["set", "xss", "--title", title]);
    let said = "<img src=x onerror=\"window.pwned=2\"><script>window.pwned=3</script>";
    hook_event(&env, &id, &json!({ "hook_event_name": "UserPromptSubmit", "prompt": said }));
    hook_event(&env, &id, &json!({ "hook_event_name": "Stop", "last_assistant_message": said }));
    let command = "<script>window.pwned=4</script>\u{1b}]0;title\u{7}";
    hook_event(
        &env,
        &id,
        &json!({ "hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": { "command": command } }),
    );
    let Some((serve, browser)) = open(&env) else { return };
    let r = browser.wait_js(
        "the question on the row",
        crate::common::WAIT,
        &format!(
            "const r = (function() {{ {ROW} }}).apply(null, arguments); return r && r.text.includes('window.pwned=4') ? r : null;"
        ),
        vec![json!("xss"), Value::Null],
    );
    let text = r["text"].as_str().unwrap_or_default();
    assert!(text.contains("<script>window.pwned=1</script>"), "the title is shown as text: {text}");
    assert!(text.contains("<script>window.pwned=4</script>"), "the question is shown as text: {text}");
    // The escape sequences are made visible or dropped, never kept raw.
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
    assert!(text.contains(r"<script>window.pwned=1</script>\e[31m"), "{text:?}");
    let inert = "return { pwned: typeof window.pwned, injected: document.querySelectorAll('main script, main img, tr script, tr img').length, inline: document.querySelectorAll('script:not([src])').length }";
    assert_eq!(browser.js(inert, vec![]), json!({ "pwned": "undefined", "injected": 0, "inline": 0 }));

    browser.goto(&url(&serve, &format!("/session/{id}")));
    browser.wait_js(
        "the prompt in the history",
        crate::common::WAIT,
        "const e = document.querySelector('#history'); return e && e.textContent.includes(arguments[0]);",
        vec![json!(said)],
    );
    browser.wait_js(
        "the question in #asking",
        crate::common::WAIT,
        "const e = document.querySelector('#asking'); return e && e.checkVisibility() && e.innerText.includes(arguments[0]);",
        vec![json!("<script>window.pwned=4</script>")],
    );
    let page = browser.js("return document.body.innerText", vec![]);
    assert!(page.as_str().unwrap_or_default().contains("<script>window.pwned=1</script>"), "the title: {page}");
    assert_eq!(browser.js(inert, vec![]), json!({ "pwned": "undefined", "injected": 0, "inline": 0 }));
}

#[test]
fn without_the_token_or_from_another_origin_nothing_changes() {
    let env = TestEnv::new();
    let id = shell(&env, "kept");
    std::fs::write(env.path_of("kept").join("draft.txt"), "unsaved\n").expect("write");
    let serve = Serve::start(&env);
    let addr: std::net::SocketAddr = serve.host.parse().expect("an address");
    let own = serve.base.clone();
    let cookie = format!("tandem_token={}", serve.token);
    let remove = format!("/api/sessions/{id}/remove");
    let force = r#"{"force":true}"#;

    // No token: 401, for pages, the API and actions alike.
    assert_eq!(request(addr, "GET", "/", &[], "").0, 401);
    assert_eq!(request(addr, "GET", "/api/sessions", &[], "").0, 401);
    assert_eq!(request(addr, "POST", &remove, &[("Origin", &own)], force).0, 401);
    assert_eq!(request(addr, "POST", &remove, &[("Origin", &own), ("Cookie", "tandem_token=0000")], force).0, 401);
    // The right token from another site's page: 403.
    let (status, body) =
        request(addr, "POST", &remove, &[("Origin", "http://evil.example"), ("Cookie", &cookie)], force);
    assert_eq!(status, 403, "{body}");
    let (status, _) = request(
        addr,
        "POST",
        &remove,
        &[("Origin", "http://evil.example"), ("Authorization", &format!("Bearer {}", serve.token))],
        force,
    );
    assert_eq!(status, 403);
    // Nothing changed.
    assert_eq!(env.session("kept")["id"], json!(id));
    assert!(env.path_of("kept").join("draft.txt").exists());

    // The terminal's WebSocket: another origin is refused, the page's own
    // is let in.
    let upgrade = |origin: &str| {
        request(
            addr,
            "GET",
            &format!("/api/sessions/{id}/terminal"),
            &[
                ("Cookie", &cookie),
                ("Origin", origin),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            "",
        )
    };
    assert_eq!(upgrade("http://evil.example").0, 403);
    assert_eq!(upgrade(&own).0, 101, "the page's own origin may open the terminal");

    // With the token and its own origin the same request does act (so the
    // refusals above were the guard's).
    let (status, body) = request(addr, "POST", &remove, &[("Origin", &own), ("Cookie", &cookie)], force);
    assert_eq!(status, 200, "{body}");
    assert!(!env.sessions().iter().any(|s| s["name"] == "kept"));
}

/// The screenshots in docs/: a dashboard with a few sessions in their
/// usual states and one session's page (`TANDEM_UPDATE_SCREENSHOTS=1`
/// writes them; every run keeps them under target/test-artefacts).
#[test]
fn screenshots_of_the_dashboard_and_a_session_page() {
    let Some((claude, mut env)) = agent_and_env("claude") else { return };
    let stub = MessagesStub::start(vec![
        Step::tool("Bash", json!({ "command": "cargo test -p reports", "description": "Run the report tests" })),
        Step::text("The CSV export works."),
    ]);
    use_claude(&mut env, &claude, &stub, &["Write"]);
    let fix = shell(&env, "fix-login-timeout");
    env.ok(&["set", "fix-login-timeout", "--title", "Fix the login timeout on slow networks"]);
    let path = env.path_of("fix-login-timeout");
    std::fs::write(path.join("login.rs"), "pub fn timeout() -> u64 {\n    30\n}\n").expect("write");
    env.git_in(&path, &["add", "login.rs"]);
    env.git_in(&path, &["commit", "-q", "-m", "Raise the login timeout to 30 s"]);
    std::fs::write(path.join("README.md"), "# test repo\n\nLogin waits 30 s on slow networks.\n").expect("write");
    hook_event(&env, &fix, &json!({ "hook_event_name": "UserPromptSubmit", "prompt": "Fix the login timeout" }));
    hook_event(
        &env,
        &fix,
        &json!({ "hook_event_name": "Stop", "last_assistant_message": "Raised the timeout to 30 s and noted it in the README." }),
    );
    env.ok(&["new", "add-csv-export", "--bg", "-p", "Export the reports as CSV"]);
    env.ok(&["set", "add-csv-export", "--title", "Export reports as CSV"]);
    shell(&env, "refactor-parser");
    env.ok(&["set", "refactor-parser", "--title", "Split the parser into lexer and grammar"]);

    let Some((serve, browser)) = open(&env) else { return };
    row(&browser, "add-csv-export", Some("needs_input"), Duration::from_secs(120));
    row(&browser, "fix-login-timeout", None, crate::common::WAIT);
    row(&browser, "refactor-parser", None, crate::common::WAIT);
    let shot = browser.screenshot("web-dashboard", Some("web-dashboard.png"));
    assert!(std::fs::metadata(&shot).expect("the dashboard's screenshot").len() > 10_000);

    // The session page, tall enough for the terminal, the diff and the
    // history, with something in the terminal.
    env.ok(&["send", "fix-login-timeout", "git log --stat -1 | cat"]);
    browser.viewport(1280, 1250, false);
    browser.goto(&url(&serve, &format!("/session/{fix}")));
    browser.wait_js(
        "the command's output in the terminal",
        crate::common::WAIT,
        &format!(
            "const t = (function() {{ {TERMINAL_TEXT} }})(); return t.includes('Raise the login timeout') ? t : null;"
        ),
        vec![],
    );
    browser.wait_js(
        "login.rs in the diff",
        crate::common::WAIT,
        "const e = document.querySelector('#diff-files'); return e && e.textContent.includes('login.rs');",
        vec![],
    );
    browser.wait_js(
        "the shell's prompt in the terminal",
        crate::common::WAIT,
        &format!("const t = (function() {{ {TERMINAL_TEXT} }})(); return t.includes('tsh$') ? t : null;"),
        vec![],
    );
    let shot = browser.screenshot("web-session", Some("web-session.png"));
    assert!(std::fs::metadata(&shot).expect("the session page's screenshot").len() > 10_000);
}

/// Issue 21: the dashboard shows remote hosts' sessions beside the local
/// ones, each row saying its host; a host that does not answer never
/// holds up the local rows, and its last known rows then say
/// `unreachable`. A remote row offers no action here (they run locally
/// by session id): its menu is disabled and it names the CLI command,
/// its host's text shown as text.
#[test]
fn remote_sessions_show_with_their_host_and_no_actions() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_REMOTE_TIMEOUT".into(), "10s".into()));
    shell(&env, "near");
    let (_listener, port) = crate::test_view::silent_port();
    let far = "far<b>away</b>";
    crate::test_view::remote_with_rows(&env, "gpu", &format!("ssh://127.0.0.1:{port}"), &[(far, "running")]);
    let Some((serve, browser)) = open(&env) else { return };
    let first = row(&browser, "near", None, LIVE);
    assert!(!first["text"].as_str().unwrap_or_default().is_empty());
    let snapshot = serve.get_json("/api/sessions");
    assert_eq!(snapshot["remote"]["sessions"], json!([]), "the silent host is still being asked: {snapshot}");
    let remote = row(&browser, far, None, Duration::from_secs(30));
    assert!(remote["state"].as_str().unwrap_or_default().starts_with("unreachable (was running"), "{remote}");
    assert_eq!(remote["href"], Value::Null, "no session page here for a remote session");
    let shown = browser.js(
        r#"const row = (name) => document.querySelector(`tr[data-session="${CSS.escape(name)}"]`);
           const far = row(arguments[0]), near = row("near");
           return { far_host: far.getAttribute("data-host"), near_host: near.getAttribute("data-host"),
                    far_label: far.querySelector(".host").textContent, near_label: near.querySelector(".host").textContent,
                    far_menu: far.querySelector("select.more").disabled, near_menu: near.querySelector("select.more").disabled,
                    note: far.querySelector(".remote-note").textContent, markup: far.querySelector("b") !== null };"#,
        vec![json!(far)],
    );
    assert_eq!(shown["far_host"], "gpu", "{shown}");
    assert_eq!(shown["near_host"], "local", "{shown}");
    assert_eq!(shown["far_label"], "host: gpu", "{shown}");
    assert_eq!(shown["near_label"], "host: local", "{shown}");
    assert_eq!(shown["far_menu"], true, "{shown}");
    assert_eq!(shown["near_menu"], false, "{shown}");
    assert_eq!(shown["note"], "on gpu: use `tandem attach gpu:far<b>away</b>`", "{shown}");
    assert_eq!(shown["markup"], false, "the host's text is text: {shown}");
    let snapshot = serve.get_json("/api/sessions");
    let rows = &snapshot["remote"]["sessions"];
    assert_eq!(rows[0]["host"], "gpu", "{snapshot}");
    assert_eq!(rows[0]["state"], "unreachable", "{snapshot}");
    assert!(
        snapshot["remote"]["notes"][0].as_str().unwrap_or_default().contains("remote `gpu` did not answer"),
        "{snapshot}"
    );
}

/// Issue 22: the session page lists the turns with their diffstat; a
/// turn's diff shows in the Diff section; a rewind happens only after its
/// confirmation, puts the file back and lists the checkpoint it made
/// first; "Undo last rewind" (confirmed too) returns.
#[test]
fn the_session_page_lists_the_turns_and_rewinds_and_undoes() {
    let env = TestEnv::new();
    let id = crate::test_web_turns::two_turns(&env, "turns");
    let notes = env.path_of("turns").join("notes.txt");
    let read = || std::fs::read_to_string(&notes).expect("notes");
    let Some((serve, browser)) = open(&env) else { return };
    browser.goto(&url(&serve, &format!("/session/{id}")));
    let wait = crate::common::WAIT;
    browser.wait_js(
        "both turns with their diffstat",
        wait,
        "const e = document.querySelector('#turns-list');
         return e && e.querySelectorAll('li[data-n]').length === 2 && e.innerText.includes('edit the notes')
           && e.querySelector('li[data-n=\"2\"]').innerText.includes('1 file, +1 -1');",
        vec![],
    );
    browser.click("#turns-list li[data-n='2'] button.turn-diff");
    browser.wait_js(
        "checkpoint 2's diff",
        wait,
        "return document.querySelector('#diff-summary').textContent.includes('checkpoint 2')
           && document.querySelector('#diff-hunks').innerText.includes('two');",
        vec![],
    );

    browser.click("#turns-list li[data-n='1'] button.turn-rewind");
    browser.wait_js(
        "the rewind's question",
        wait,
        "const e = document.querySelector('#rewind-confirm');
         return !e.hidden && e.innerText.includes('Rewind turns to checkpoint 1 (write the notes)?');",
        vec![],
    );
    assert_eq!(read(), "two\n", "nothing before the confirmation");
    browser.click("#rewind-yes");
    wait_within("the file as at checkpoint 1", wait, || (read() == "one\n").then_some(()));
    browser.wait_js(
        "the rewind said, and the checkpoint it made first listed",
        wait,
        "const li = document.querySelector('#turns-list li[data-n=\"3\"]');
         return document.querySelector('#toast').textContent.includes('undo goes back to it')
           && li !== null && li.innerText.includes('before rewind to 1');",
        vec![],
    );

    browser.click("#undo-rewind");
    browser.wait_js(
        "the undo's question",
        wait,
        "const e = document.querySelector('#rewind-confirm'); return !e.hidden && e.innerText.includes('last rewind?');",
        vec![],
    );
    browser.click("#rewind-yes");
    wait_within("the file as before the rewind", wait, || (read() == "two\n").then_some(()));
    // No script error or refused request (the browser's own favicon aside).
    let said: Vec<String> = browser.console().into_iter().filter(|l| !l.contains("favicon.ico")).collect();
    assert!(said.is_empty(), "the console: {said:?}");
}
