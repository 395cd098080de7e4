//! `tandem serve` and `tandem mcp` attacked (issue 20): each test is an
//! attack on the real binary (a real server on a loopback port, a real
//! supervisor and shell agents), written as a raw HTTP/1.1 request so
//! every header (a second `Host`, a missing `Origin`, an absolute-form
//! target) is exactly what an attacker sends. Each asserts the refusal
//! and that nothing changed. docs/security.md lists the claims and these
//! tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::web::Serve;
use crate::common::{PROMPT, TestEnv, wait_for};
use crate::test_mcp::Mcp;

/// A shell session `name`, its prompt shown; answers its id.
fn shell(env: &TestEnv, name: &str) -> String {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    wait_for("the shell's prompt", || env.ok(&["logs", name]).contains(PROMPT).then_some(()));
    env.session(name)["id"].as_str().expect("id").to_owned()
}

/// An answer to a raw request: status, headers (names lowercase), body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (the request line and headers, without the blank line;
/// `Content-Length` and `Connection: close` are added) and `body` as they
/// are, and reads the answer's head and the start of its body.
fn raw(serve: &Serve, head: &str, body: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(&serve.host).expect("connect to tandem serve");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head = format!("{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).expect("send");
    // The server may answer (413, 401) before reading the whole body.
    let _ = stream.write_all(body);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    // A WebSocket that was let in stays open: read the head and stop.
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
        if bytes.starts_with(b"HTTP/1.1 101") && bytes.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw { status, headers, body: body.to_owned() }
}

/// `METHOD path` with the server's own `Host` and `headers`.
fn request(serve: &Serve, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Raw {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}", serve.host);
    for (k, v) in headers {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    raw(serve, &head, body.as_bytes())
}

fn bearer(serve: &Serve) -> String {
    format!("Bearer {}", serve.token)
}

fn cookie(serve: &Serve) -> String {
    format!("tandem_token={}", serve.token)
}

/// The state `tandem list --json` shows for `name`.
fn state(env: &TestEnv, name: &str) -> Value {
    env.session(name)["state"].clone()
}

#[test]
fn without_the_token_or_with_a_wrong_one_every_route_is_401_and_nothing_changes() {
    let env = TestEnv::new();
    let id = shell(&env, "kept");
    let serve = Serve::start(&env);
    let own = serve.base.clone();
    let stop = format!("/api/sessions/{id}/stop");
    // A wrong token of the right length: the compare is of the whole
    // token (in constant time), no prefix lets in.
    let last = if serve.token.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &serve.token[..serve.token.len() - 1]);
    let wrong_bearer = format!("Bearer {wrong}");
    let wrong_cookie = format!("tandem_token={wrong}");
    let lower = format!("bearer {}", serve.token);
    let in_query = format!("{stop}?token={}", serve.token);
    for (method, path, headers) in [
        ("GET", "/", vec![]),
        ("GET", "/api/sessions", vec![]),
        ("GET", "/api/events", vec![]),
        ("GET", "/assets/dashboard.js", vec![]),
        ("GET", "/nowhere", vec![]),
        ("GET", "/api/sessions", vec![("Authorization", wrong_bearer.as_str())]),
        ("GET", "/api/sessions", vec![("Authorization", lower.as_str())]),
        ("GET", "/api/sessions", vec![("Cookie", wrong_cookie.as_str())]),
        ("POST", stop.as_str(), vec![("Origin", own.as_str())]),
        ("POST", stop.as_str(), vec![("Origin", own.as_str()), ("Authorization", wrong_bearer.as_str())]),
        ("POST", stop.as_str(), vec![("Origin", own.as_str()), ("Cookie", wrong_cookie.as_str())]),
        // The token in the query of a POST is no login.
        ("POST", in_query.as_str(), vec![("Origin", own.as_str())]),
    ] {
        let answer = request(&serve, method, path, &headers, "");
        assert_eq!(answer.status, 401, "{method} {path} {headers:?}: {}", answer.body);
        assert!(!answer.body.contains(&serve.token), "a refusal never holds the token: {}", answer.body);
        assert!(answer.header("set-cookie").is_none(), "{method} {path}: no cookie without the token");
    }
    // A wrong token in the login URL: 401 and no cookie.
    let login = request(&serve, "GET", &format!("/?token={wrong}"), &[], "");
    assert_eq!(login.status, 401, "{}", login.body);
    assert!(login.header("set-cookie").is_none());
    assert_eq!(state(&env, "kept"), "running", "nothing changed");
}

#[test]
fn the_login_url_sets_a_strict_cookie_and_never_redirects_off_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let serve = Serve::start(&env);
    // The token is the user's own: 64 hex digits in a file only they read.
    let file = env.tandem_home.join("state").join("web-token");
    let kept = std::fs::read_to_string(&file).expect("the token file");
    assert_eq!(kept.trim(), serve.token);
    assert!(serve.token.len() == 64 && serve.token.bytes().all(|b| b.is_ascii_hexdigit()), "{}", serve.token);
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    let login = request(&serve, "GET", &format!("/?token={}", serve.token), &[], "");
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.header("location"), Some("/"), "the token leaves the address bar");
    let set = login.header("set-cookie").expect("the cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert_eq!(login.header("referrer-policy"), Some("no-referrer"), "the login answer sends no Referer either");
    // A path a browser reads as another host's (`//evil.example/`):
    // the redirect stays on this server.
    for path in ["//evil.example/", "//evil.example/x", "///evil.example"] {
        let login = request(&serve, "GET", &format!("{path}?token={}", serve.token), &[], "");
        assert_eq!(login.status, 303, "{path}: {}", login.body);
        assert_eq!(login.header("location"), Some("/"), "{path} is no way off the server");
    }
    // The cookie then lets the browser in.
    let page = request(&serve, "GET", "/api/sessions", &[("Cookie", &cookie(&serve))], "");
    assert_eq!(page.status, 200, "{}", page.body);
}

#[test]
fn a_host_other_than_the_servers_own_is_403_even_with_the_token() {
    let env = TestEnv::new();
    let serve = Serve::start(&env);
    let port = serve.host.rsplit(':').next().expect("a port").to_owned();
    let auth = bearer(&serve);
    let with_host = |host: Option<&str>| {
        let mut head = "GET /api/sessions HTTP/1.1".to_owned();
        if let Some(host) = host {
            head.push_str(&format!("\r\nHost: {host}"));
        }
        head.push_str(&format!("\r\nAuthorization: {auth}"));
        raw(&serve, &head, b"")
    };
    // DNS rebinding: a name of the attacker's that resolves to 127.0.0.1.
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1:{port}.evil.example"),
        format!("localhost.:{port}"),
        "localhost".to_owned(),
        format!("127.1:{port}"),
        format!("[0:0:0:0:0:0:0:1]:{port}"),
        String::new(),
    ] {
        let answer = with_host(Some(&host));
        assert_eq!(answer.status, 403, "Host: {host:?}: {}", answer.body);
        assert!(answer.body.contains("answers only to the address it listens on"), "{}", answer.body);
    }
    let answer = with_host(None);
    assert_eq!(answer.status, 403, "no Host at all: {}", answer.body);
    // Two Host headers, ours first or second: refused, whichever a proxy
    // or a check would read.
    for hosts in [[serve.host.clone(), "evil.example".to_owned()], ["evil.example".to_owned(), serve.host.clone()]] {
        let head =
            format!("GET /api/sessions HTTP/1.1\r\nHost: {}\r\nHost: {}\r\nAuthorization: {auth}", hosts[0], hosts[1]);
        let answer = raw(&serve, &head, b"");
        assert_eq!(answer.status, 403, "{hosts:?}: {}", answer.body);
    }
    // An absolute-form target naming another host, with our Host.
    let head = format!(
        "GET http://evil.example:{port}/api/sessions HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}",
        serve.host
    );
    let answer = raw(&serve, &head, b"");
    assert_eq!(answer.status, 403, "absolute-form target: {}", answer.body);
    // What a browser on this machine sends is let in.
    for host in [format!("LOCALHOST:{port}"), format!("localhost:{port}"), format!("[::1]:{port}"), serve.host.clone()]
    {
        assert_eq!(with_host(Some(&host)).status, 200, "Host: {host}");
    }
}

#[test]
fn a_change_from_any_origin_but_the_servers_own_is_403_and_nothing_changes() {
    let env = TestEnv::new();
    let id = shell(&env, "kept");
    let serve = Serve::start(&env);
    let port = serve.host.rsplit(':').next().expect("a port").to_owned();
    let stop = format!("/api/sessions/{id}/stop");
    let cookie = cookie(&serve);
    let wrong_bearer = format!("Bearer {}", "f".repeat(64));
    let prefix = format!("{}.evil.example", serve.base);
    let https = format!("https://{}", serve.host);
    let slash = format!("{}/", serve.base);
    let other_loopback = format!("http://localhost:{port}");
    let evil = "http://evil.example";
    for headers in [
        // A cookie alone, no Origin: a browser always sends one on a POST,
        // so this is no page of ours.
        vec![("Cookie", cookie.as_str())],
        vec![("Cookie", cookie.as_str()), ("Origin", "null")],
        vec![("Cookie", cookie.as_str()), ("Origin", prefix.as_str())],
        vec![("Cookie", cookie.as_str()), ("Origin", https.as_str())],
        vec![("Cookie", cookie.as_str()), ("Origin", slash.as_str())],
        vec![("Cookie", cookie.as_str()), ("Origin", other_loopback.as_str())],
        vec![("Cookie", cookie.as_str()), ("Origin", evil), ("Content-Type", "text/plain")],
        vec![("Cookie", cookie.as_str()), ("Origin", evil), ("Content-Type", "application/x-www-form-urlencoded")],
        // Two Origins, ours first: refused.
        vec![("Cookie", cookie.as_str()), ("Origin", serve.base.as_str()), ("Origin", evil)],
        // A wrong bearer beside the right cookie is no script's request.
        vec![("Cookie", cookie.as_str()), ("Authorization", wrong_bearer.as_str())],
    ] {
        for method in ["POST", "DELETE", "PUT"] {
            let answer = request(&serve, method, &stop, &headers, "{}");
            assert_eq!(answer.status, 403, "{method} {headers:?}: {}", answer.body);
        }
    }
    // The text/plain form a page on another site can send without CORS.
    let form = request(
        &serve,
        "POST",
        &format!("/api/sessions/{id}/send"),
        &[("Cookie", &cookie), ("Origin", evil), ("Content-Type", "text/plain")],
        r#"{"text":"touch pwned"}"#,
    );
    assert_eq!(form.status, 403, "{}", form.body);
    assert_eq!(state(&env, "kept"), "running", "nothing changed");
    assert!(!env.path_of("kept").join("pwned").exists());
    // The page's own origin, and a script's bearer token without one, act.
    let own = request(
        &serve,
        "POST",
        &format!("/api/sessions/{id}/interrupt"),
        &[("Cookie", &cookie), ("Origin", &serve.base)],
        "",
    );
    assert_eq!(own.status, 200, "{}", own.body);
    let script = request(&serve, "POST", &stop, &[("Authorization", &bearer(&serve))], "");
    assert_eq!(script.status, 200, "{}", script.body);
    assert_ne!(state(&env, "kept"), "running");
}

#[test]
fn the_terminal_socket_needs_the_token_and_the_servers_own_origin() {
    let env = TestEnv::new();
    let id = shell(&env, "watched");
    let serve = Serve::start(&env);
    let path = format!("/api/sessions/{id}/terminal");
    let cookie = cookie(&serve);
    let upgrade = |extra: &[(&str, &str)], path: &str| {
        let mut headers = vec![
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        headers.extend_from_slice(extra);
        request(&serve, "GET", path, &headers, "").status
    };
    assert_eq!(upgrade(&[("Cookie", &cookie)], &path), 403, "no Origin");
    assert_eq!(upgrade(&[("Cookie", &cookie), ("Origin", "null")], &path), 403, "Origin null");
    assert_eq!(upgrade(&[("Cookie", &cookie), ("Origin", "http://evil.example")], &path), 403);
    let in_query = format!("{path}?token={}", serve.token);
    assert_eq!(upgrade(&[("Origin", &serve.base)], &in_query), 401, "a token in the URL is no login for a socket");
    assert_eq!(upgrade(&[("Cookie", &cookie), ("Origin", &serve.base)], &path), 101, "the page's own");
}

#[test]
fn every_answer_is_hardened_and_every_page_has_a_strict_csp() {
    let env = TestEnv::new();
    let id = shell(&env, "paged");
    let serve = Serve::start(&env);
    let cookie = cookie(&serve);
    let hardened = |answer: &Raw, what: &str| {
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{what}");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"), "{what}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
    };
    hardened(&request(&serve, "GET", "/api/sessions", &[], ""), "a 401");
    hardened(&raw(&serve, &format!("GET / HTTP/1.1\r\nHost: evil.example\r\nCookie: {cookie}"), b""), "a 403");
    hardened(&request(&serve, "GET", "/nowhere", &[("Cookie", &cookie)], ""), "a 404");
    hardened(&request(&serve, "GET", "/api/sessions", &[("Cookie", &cookie)], ""), "a 200");
    for page in [
        "/".to_owned(),
        format!("/session/{id}"),
        "/new".into(),
        "/tasks".into(),
        "/tasks/1/x".into(),
        "/conflicts".into(),
    ] {
        let answer = request(&serve, "GET", &page, &[("Cookie", &cookie)], "");
        assert_eq!(answer.status, 200, "{page}");
        hardened(&answer, &page);
        let csp = answer.header("content-security-policy").unwrap_or_else(|| panic!("{page} has a CSP"));
        let script = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).expect("script-src");
        assert_eq!(script, "script-src 'self'", "{page}: no inline or remote script runs");
        for part in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "connect-src 'self'"] {
            assert!(csp.contains(part), "{page}: {csp}");
        }
        assert!(!answer.body.contains("<script>"), "{page} has no inline script");
    }
}

#[test]
fn asset_names_cannot_reach_past_the_embedded_files() {
    let env = TestEnv::new();
    let serve = Serve::start(&env);
    let cookie = cookie(&serve);
    for path in [
        "/assets/../Cargo.toml",
        "/assets/..%2fCargo.toml",
        "/assets/%2e%2e%2fsrc%2flib.rs",
        "/assets/vendor/..%2fcommon.js",
        "/assets/vendor/..%2f..%2fsrc%2flib.rs",
        "/assets/vendor/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/common.js%00.html",
        "/assets/vendor/xterm.js/../../../Cargo.toml",
        "/assets/%2fetc%2fpasswd",
        "/assets/vendor/%2fetc%2fpasswd",
    ] {
        let answer = request(&serve, "GET", path, &[("Cookie", &cookie)], "");
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(!answer.body.contains("[package]") && !answer.body.contains("root:"), "{path}");
    }
    assert_eq!(request(&serve, "GET", "/assets/vendor/xterm.js", &[("Cookie", &cookie)], "").status, 200);
}

#[test]
fn a_body_over_the_limit_is_413_and_makes_nothing() {
    let env = TestEnv::new();
    let id = shell(&env, "kept");
    let serve = Serve::start(&env);
    let huge = json!({ "repo": env.repo, "agent": "shell", "prompt": "x".repeat(3 << 20) }).to_string();
    let headers = [
        ("Authorization", bearer(&serve)),
        ("Origin", serve.base.clone()),
        ("Content-Type", "application/json".to_owned()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = request(&serve, "POST", "/api/sessions", &headers, &huge);
    assert_eq!(made.status, 413, "{}", made.body);
    let sent = request(&serve, "POST", &format!("/api/sessions/{id}/send"), &headers, &huge);
    assert_eq!(sent.status, 413, "{}", sent.body);
    assert_eq!(env.sessions().len(), 1, "nothing made");
}

#[test]
fn no_answer_of_the_web_api_or_mcp_holds_a_secret_value() {
    let mut env = TestEnv::new();
    // A caller's secret (masked by `tandem env`), an `--env` secret, an
    // env file's value, and a title holding a secret's value.
    env.env.push(("MY_SERVICE_TOKEN".to_owned(), "caller-secret-7731".to_owned()));
    let file = env.tmp.path().join("secrets.env");
    std::fs::write(&file, "DB_PASSWORD=file-secret-5512\n").expect("write");
    let file = file.display().to_string();
    env.ok(&[
        "new",
        "vault",
        "--bg",
        "--agent",
        "shell",
        "--env",
        "MY_API_KEY=flag-secret-9903",
        "--env-file",
        &file,
        "--title",
        "uses flag-secret-9903",
    ]);
    wait_for("the shell's prompt", || env.ok(&["logs", "vault"]).contains(PROMPT).then_some(()));
    let id = env.session("vault")["id"].as_str().expect("id").to_owned();
    let secrets = ["caller-secret-7731", "flag-secret-9903", "file-secret-5512"];
    let shown = env.ok(&["env", "vault"]);
    for secret in secrets {
        assert!(!shown.contains(secret), "`tandem env` masks {secret}: {shown}");
    }
    let serve = Serve::start(&env);
    for path in [
        "/api/sessions".to_owned(),
        format!("/api/sessions/{id}"),
        format!("/api/sessions/{id}/history"),
        format!("/api/sessions/{id}/diff"),
        "/api/repos".into(),
        "/api/tasks".into(),
        "/api/openapi.json".into(),
    ] {
        let answer = serve.get(&path);
        for secret in secrets {
            assert!(!answer.text.contains(secret), "GET {path} serves {secret}: {}", answer.text);
        }
        assert!(!answer.text.contains(&serve.token), "GET {path} serves the token");
    }
    let row = serve.get(&format!("/api/sessions/{id}")).json();
    assert_eq!(row["session"]["title"], "uses ••••••", "{row}");
    let mut mcp = Mcp::start(&env, &env.repo, &[]);
    for (tool, args) in [
        ("list_sessions", json!({})),
        ("session_state", json!({"name": "vault"})),
        ("get_history", json!({"name": "vault"})),
        ("get_diff", json!({"name": "vault"})),
    ] {
        let (error, text) = mcp.call(tool, args);
        assert!(!error, "{tool}: {text}");
        for secret in secrets {
            assert!(!text.contains(secret), "{tool} answers {secret}: {text}");
        }
    }
}

#[test]
fn mcp_tools_refuse_traversal_and_option_like_names_and_change_nothing() {
    let env = TestEnv::new();
    shell(&env, "kept");
    let mut mcp = Mcp::start(&env, &env.repo, &[]);
    let outside = env.tmp.path().join("written");
    let option = format!("--output={}", outside.display());
    for (tool, args, says) in [
        ("list_sessions", json!({"repo": "../../../../../../etc"}), "not inside a git repository"),
        ("session_state", json!({"name": "../kept"}), "no session named"),
        ("session_state", json!({"name": "../../etc/passwd"}), "no session named"),
        ("get_diff", json!({"name": "kept", "against": option}), "does not name a commit"),
        ("get_diff", json!({"name": "kept", "against": "-p"}), "does not name a commit"),
        ("task_show", json!({"task": "../../x"}), "no task named"),
        ("send_prompt", json!({"name": "kept/../../x", "text": "hi"}), "no session named"),
    ] {
        let (error, text) = mcp.call(tool, args.clone());
        assert!(error, "{tool} {args} is refused: {text}");
        assert!(text.contains(says), "{tool} {args}: {text}");
    }
    assert!(!outside.exists(), "no option reached git");
    let names: Vec<Value> = env.sessions().iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, [json!("kept")], "nothing made");
    // A name with `../` is made a name (as `tandem new` does): its
    // worktree stays beside the others.
    let (error, text) = mcp.call("new_session", json!({"name": "../escape", "agent": "shell"}));
    assert!(!error, "{text}");
    let made: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(made["name"], "escape", "{made}");
    let kept = env.path_of("kept");
    assert_eq!(std::path::Path::new(made["path"].as_str().expect("path")).parent(), kept.parent(), "{made}");
}

/// The page scripts as served: text from agents and repositories reaches
/// the page only through `textContent`/`el()` (the browser test
/// `a_script_in_a_title_or_in_agent_output_renders_as_text` renders such
/// text); no script writes HTML but highlight.js's escaped output, and
/// no link takes a URL from data without a scheme check.
#[test]
fn page_scripts_never_write_data_as_html() {
    let env = TestEnv::new();
    let serve = Serve::start(&env);
    for name in ["common.js", "dashboard.js", "session.js", "new.js", "pages.js", "tasks.js", "task.js", "conflicts.js"]
    {
        let script = serve.get(&format!("/assets/{name}"));
        assert_eq!(script.status, 200, "{name}");
        for (n, line) in script.text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || code.starts_with('*') || code.starts_with("/*") {
                continue;
            }
            let at = format!("{name}:{}: {line}", n + 1);
            for sink in ["insertAdjacentHTML", "outerHTML", "document.write", "eval(", "new Function", "srcdoc"] {
                assert!(!line.contains(sink), "{at}");
            }
            if line.contains("innerHTML") {
                assert!(line.contains("hljs.highlight("), "only highlight.js's escaped HTML: {at}");
            }
            if line.contains("href:") && !line.contains("href: \"#\"") && !line.contains("href: url") {
                assert!(
                    line.contains("encodeURIComponent") || line.contains("repo.id"),
                    "a link built from data: {at}"
                );
            }
        }
    }
    let session = serve.get("/assets/session.js").text;
    assert!(session.contains(r"/^https:\/\//.test(pr.url)"), "a pull request's link must be https");
}

/// A page on another port of this host (an agent's dev server, serving
/// what a repository holds) is the same *site* as the dashboard, so the
/// browser sends the `SameSite=Strict` cookie with its requests. Its
/// reads of the API are refused by their `Sec-Fetch-Site` (a GET such as
/// a task's page runs the task's check); the dashboard's own (`same-origin`),
/// a typed URL (`none`) and scripts (no such header) are let in.
#[test]
fn an_api_request_from_another_page_of_this_host_is_403() {
    let env = TestEnv::new();
    let serve = Serve::start(&env);
    let cookie = cookie(&serve);
    for path in ["/api/sessions", "/api/events", "/api/tasks/1/x", "/api/repos"] {
        for site in ["same-site", "cross-site"] {
            let answer = request(&serve, "GET", path, &[("Cookie", &cookie), ("Sec-Fetch-Site", site)], "");
            assert_eq!(answer.status, 403, "{path} from a {site} page: {}", answer.body);
        }
    }
    for site in [Some("same-origin"), Some("none"), None] {
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend(site.map(|s| ("Sec-Fetch-Site", s)));
        let answer = request(&serve, "GET", "/api/sessions", &headers, "");
        assert_eq!(answer.status, 200, "{site:?}: {}", answer.body);
    }
    // Pages are static: a link from elsewhere still opens one.
    let page = request(&serve, "GET", "/", &[("Cookie", &cookie), ("Sec-Fetch-Site", "cross-site")], "");
    assert_eq!(page.status, 200, "{}", page.body);
}

/// A prompt larger than a host takes (1 MiB) is refused as too long,
/// naming the limit, over the API and MCP alike; the agent keeps running
/// and the history holds no half of it (it was answered "no running
/// agent", which sent the user to respawn a session that ran).
#[test]
fn a_prompt_too_long_for_the_host_is_refused_as_too_long_and_the_agent_runs_on() {
    let env = TestEnv::new();
    let id = shell(&env, "kept");
    let serve = Serve::start(&env);
    let huge = format!("echo {}", "z".repeat(3 << 19));
    let sent = serve.act(&id, "send", &json!({ "text": huge }));
    assert_eq!(sent.status, 400, "{}", sent.text);
    assert!(sent.text.contains("too long") && sent.text.contains("1 MiB"), "{}", sent.text);
    let mut mcp = Mcp::start(&env, &env.repo, &[]);
    let (error, text) = mcp.call("send_prompt", json!({ "name": "kept", "text": huge }));
    assert!(error && text.contains("too long"), "{text}");
    assert_eq!(state(&env, "kept"), "running");
    assert!(!env.ok(&["history", "kept"]).contains("zzzz"), "no prompt recorded");
    // One within the limit is typed.
    let ok = serve.act(&id, "send", &json!({ "text": "echo small-one" }));
    assert_eq!(ok.status, 200, "{}", ok.text);
}

/// History search words as an attacker types them (FTS syntax, quotes,
/// a NUL) are words, never a query of the database's: each answers 200,
/// no error naming the database's file.
#[test]
fn history_search_words_are_only_words() {
    let env = TestEnv::new();
    let id = shell(&env, "kept");
    env.ok(&["send", "kept", "echo needle-words"]);
    let serve = Serve::start(&env);
    for q in ["%22", "NEAR(", "a%20OR%20b", "*", "col:x", "%00", "needle%00x", "%22%00%22", "-x"] {
        let answer = serve.get(&format!("/api/sessions/{id}/history?q={q}"));
        assert_eq!(answer.status, 200, "q={q}: {}", answer.text);
        assert!(!answer.text.contains("tandem.db"), "q={q}: {}", answer.text);
    }
    let found = serve.get(&format!("/api/sessions/{id}/history?q=needle-words")).json();
    assert_eq!(found["events"].as_array().map(Vec::len), Some(1), "{found}");
}

/// Values in API bodies that look like git options (`--output=FILE`,
/// `-D`) are refused as names that name no commit; nothing is written
/// and nothing made. A session name with `--` is made a plain name.
#[test]
fn option_like_values_in_api_bodies_never_reach_git_as_options() {
    let env = TestEnv::new();
    let id = shell(&env, "kept");
    let serve = Serve::start(&env);
    let written = env.tmp.path().join("written");
    let option = format!("--output={}", written.display());
    let made = serve.post("/api/sessions", &json!({ "repo": env.repo, "agent": "shell", "base": option }));
    assert_eq!(made.status, 400, "{}", made.text);
    assert!(made.text.contains("does not name a commit"), "{}", made.text);
    for into in [option.as_str(), "-D"] {
        let merged = serve.act(&id, "merge", &json!({ "into": into }));
        assert_eq!(merged.status, 400, "{into}: {}", merged.text);
        assert!(merged.text.contains("does not name a commit"), "{}", merged.text);
    }
    let diff = serve.get(&format!("/api/sessions/{id}/diff?against=--output%3D{}", written.display()));
    assert_eq!(diff.status, 400, "{}", diff.text);
    assert!(!written.exists(), "no option reached git");
    assert_eq!(env.sessions().len(), 1, "nothing made");
    let named = serve.post("/api/sessions", &json!({ "repo": env.repo, "agent": "shell", "name": "--help" }));
    assert_eq!(named.status, 200, "{}", named.text);
    assert_eq!(named.json()["name"], "help", "{}", named.text);
}

/// Files an agent wrote whose name and content are HTML (`page.html` is
/// highlighted: the one place a page writes HTML) show as text in a
/// real Chromium: nothing runs, nothing is injected.
#[test]
fn a_diff_whose_file_name_and_content_are_html_renders_as_text() {
    let env = TestEnv::new();
    let id = shell(&env, "differ");
    let name = "<img src=x onerror=window.pwned=5>.html";
    let content = "</code></pre><img src=x onerror=\"window.pwned=6\"><script>window.pwned=7</script>\n";
    let path = env.path_of("differ");
    std::fs::write(path.join(name), content).expect("write");
    std::fs::write(path.join("page.html"), content).expect("write");
    env.git_in(&path, &["add", "."]);
    env.git_in(&path, &["commit", "-q", "-m", "<script>window.pwned=8</script>"]);
    let Some(browser) = crate::common::browser::Browser::start() else { return };
    let serve = Serve::start(&env);
    browser.goto(&format!("{}/?token={}", serve.base, serve.token));
    browser.goto(&format!("{}/session/{id}", serve.base));
    browser.wait_js(
        "the file in the diff's files",
        crate::common::WAIT,
        "const e = document.querySelector('#diff-files'); return e && e.textContent.includes(arguments[0]);",
        vec![json!(name)],
    );
    browser.wait_js(
        "the content in the hunks",
        crate::common::WAIT,
        "const e = document.querySelector('#diff-hunks'); return e && e.textContent.includes('window.pwned=7');",
        vec![],
    );
    let inert = "return { pwned: typeof window.pwned, injected: document.querySelectorAll('#diff img, #diff script, #history img, #history script').length, inline: document.querySelectorAll('script:not([src])').length }";
    assert_eq!(browser.js(inert, vec![]), json!({ "pwned": "undefined", "injected": 0, "inline": 0 }));
}

/// A terminal size no screen has (3000 × 3000 cells, as a page in
/// control may send; 65535 × 65535 would take the host's screen past
/// 100 GB) is ignored by the host: the agent keeps its size and runs on.
#[test]
fn a_terminal_size_no_screen_has_is_ignored_and_the_agent_runs_on() {
    use tungstenite::Message;
    let env = TestEnv::new();
    let id = shell(&env, "sized");
    let serve = Serve::start(&env);
    let size_file = env.tandem_home.join("state/sessions").join(&id).join("pty.size");
    let before = std::fs::read_to_string(&size_file).expect("pty.size").trim().to_owned();
    let mut socket = serve.websocket(&format!("/api/sessions/{id}/terminal"), None, true).expect("the socket opens");
    type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;
    let send = |socket: &mut Socket, value: Value| {
        socket.send(Message::Text(value.to_string().into())).expect("send");
    };
    send(&mut socket, json!({ "type": "control" }));
    send(&mut socket, json!({ "type": "resize", "rows": 3000, "cols": 3000 }));
    send(&mut socket, json!({ "type": "input", "data": "echo mark-$((40+2)) $(stty size) end\r" }));
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + crate::common::WAIT;
    let said = loop {
        assert!(std::time::Instant::now() < deadline, "no answer: {}", String::from_utf8_lossy(&seen));
        if let Ok(Message::Binary(bytes)) = socket.read() {
            seen.extend_from_slice(&bytes);
        }
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(line) = text.split("mark-42 ").nth(1).filter(|l| l.contains(" end")) {
            break line.split(" end").next().unwrap_or_default().to_owned();
        }
    };
    assert_eq!(said, before, "the agent keeps its size");
    assert_eq!(std::fs::read_to_string(&size_file).expect("pty.size").trim(), before);
    assert_eq!(state(&env, "sized"), "running");
    let _ = socket.close(None);
}
