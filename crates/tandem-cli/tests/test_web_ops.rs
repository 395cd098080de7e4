//! `tandem serve` operations (issue 20): the dashboard inside the
//! supervisor (`[serve]`), HTTPS and the rules for addresses other than
//! loopback, notifications (`[notify]`) and `/api/openapi.json`. HTTP
//! goes through the real `curl`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::common::http::{self, Server};
use crate::common::{TestEnv, hook_event, skipped, stderr, wait_for};

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `curl` of `url` with `args`: the status code (0 when it could not
/// connect) and the body.
fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// The token in a login URL (`…/?token=T`).
fn token_of(url: &str) -> String {
    url.trim().rsplit_once("?token=").expect("a login URL").1.to_owned()
}

/// A `tandem serve` the test started, killed by its pid when dropped.
struct Serving {
    child: Child,
    /// The login URL it printed.
    url: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tandem serve ARGS` and waits for the URL it prints.
fn serve(env: &TestEnv, args: &[&str]) -> (Serving, Arc<Mutex<String>>) {
    let mut child = env
        .command_in(&env.repo, &[&["serve"], args].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tandem serve");
    let errors = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let seen = Arc::clone(&errors);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    // The first line (the URL) within WAIT; the rest is read on, so the
    // server's next lines find an open pipe.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
        lines.for_each(drop);
    });
    let first = rx.recv_timeout(crate::common::WAIT).unwrap_or_default();
    let serving = Serving { child, url: first.trim_start_matches("tandem dashboard: ").to_owned() };
    assert!(serving.url.contains("?token="), "no URL printed: {first:?}; stderr: {}", errors.lock().unwrap());
    (serving, errors)
}

/// The pid of the supervisor's child whose command line has `word`
/// (from `/proc`: its threads' children).
fn companion(supervisor: i32, word: &str) -> Option<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{supervisor}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let children = std::fs::read_to_string(task.path().join("children")).ok()?;
        children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()).find(|c| {
            let cmdline = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains("--supervised") && cmdline.contains(word)
        })
    })
}

/// Whether anything accepts a TCP connection on `127.0.0.1:port`.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn the_supervisor_runs_the_dashboard_when_serve_is_enabled_and_stops_it_with_itself() {
    let env = TestEnv::new();
    let port = free_port();
    env.user_config(&format!("[serve]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"));
    let url = env.ok(&["serve", "--print-url"]);
    assert!(url.starts_with(&format!("http://127.0.0.1:{port}/?token=")), "{url}");
    assert!(!listening(port), "--print-url only prints");
    let token = token_of(&url);

    env.ok(&["daemon", "start"]);
    let api = format!("http://127.0.0.1:{port}/api/sessions");
    let body = wait_for("the supervisor's dashboard to answer", || {
        let (code, body) = curl(&api, &["-H", &bearer(&token)]);
        (code == 200).then_some(body)
    });
    let snapshot: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(snapshot["repos"].is_array(), "{snapshot}");
    assert_eq!(curl(&api, &[]).0, 401, "the token is required");
    let status = env.ok(&["daemon", "status"]);
    assert!(status.contains(&format!("dashboard: http://127.0.0.1:{port}/ (`tandem serve --print-url`")), "{status}");
    assert!(!status.contains(&token), "daemon status shows no token: {status}");

    // Killed, it is started again.
    let supervisor = env.supervisor_pid().expect("a supervisor");
    let pid = wait_for("the dashboard's pid", || companion(supervisor, "--listen"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
    wait_for("the dashboard to answer again", || (curl(&api, &["-H", &bearer(&token)]).0 == 200).then_some(()));

    env.ok(&["daemon", "stop"]);
    wait_for("the dashboard to stop with the supervisor", || (!listening(port)).then_some(()));
}

#[test]
fn a_non_loopback_address_needs_tls_or_insecure_http() {
    let env = TestEnv::new();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    // Spawned, not waited on blindly: a server that did not refuse would
    // run for ever; it is killed (by its pid) and the test fails.
    let mut child = env
        .command_in(&env.repo, &["serve", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tandem serve");
    let exited = http::wait_until(crate::common::WAIT, || child.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("tandem serve");
    assert!(exited, "tandem serve --listen {listen} did not refuse");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--tls-cert") && err.contains("--tls-key") && err.contains("--insecure-http"), "{err}");
    assert!(!listening(port), "nothing listens after the refusal");

    let (serving, errors) = serve(&env, &["--listen", &listen, "--insecure-http"]);
    assert!(errors.lock().unwrap().contains("warning: serving plain HTTP"), "{}", errors.lock().unwrap());
    let token = token_of(&serving.url);
    // Any IP address of the machine names it; a DNS name does not.
    let api = format!("http://127.0.0.1:{port}/api/sessions");
    assert_eq!(curl(&api, &["-H", &bearer(&token)]).0, 200);
    assert_eq!(curl(&api, &["-H", &bearer(&token), "-H", &format!("Host: rebound.example:{port}")]).0, 403);
}

/// A self-signed certificate for 127.0.0.1, made by the openssl CLI.
fn self_signed(dir: &Path) -> Option<(String, String)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    made.success().then(|| (cert.display().to_string(), key.display().to_string()))
}

#[test]
fn https_with_a_self_signed_certificate() {
    let env = TestEnv::new();
    let Some((cert, key)) = self_signed(env.tmp.path()) else {
        skipped("the openssl CLI is not installed (apt-get install openssl)");
        return;
    };
    let (serving, _) = serve(&env, &["--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key]);
    assert!(serving.url.starts_with("https://127.0.0.1:"), "{}", serving.url);
    let token = token_of(&serving.url);
    let base = serving.url.split("/?token=").next().expect("base").to_owned();
    let (code, body) = curl(&format!("{base}/api/sessions"), &["--cacert", &cert, "-H", &bearer(&token)]);
    assert_eq!(code, 200, "{body}");
    // The login URL's cookie is Secure; plain HTTP gets no answer.
    let (_, head) = curl(&serving.url, &["--cacert", &cert, "-D", "-", "-o", "/dev/null"]);
    let cookie = head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap_or_default();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"), "{head}");
    let plain = base.replace("https://", "http://");
    assert_ne!(curl(&format!("{plain}/api/sessions"), &["-H", &bearer(&token)]).0, 200);
    // A state-changing request's Origin must be https://.
    let origin = |o: &str| {
        curl(
            &format!("{base}/api/openapi.json"),
            &["--cacert", &cert, "-X", "POST", "-H", &bearer(&token), "-H", &format!("Origin: {o}")],
        )
        .0
    };
    let host = base.trim_start_matches("https://");
    assert_eq!(origin(&format!("http://{host}")), 403);
    assert_ne!(origin(&format!("https://{host}")), 403);
}

#[test]
fn openapi_lists_every_route_and_the_row_has_every_list_json_key() {
    let env = TestEnv::new();
    let (serving, _) = serve(&env, &["--listen", "127.0.0.1:0"]);
    let token = token_of(&serving.url);
    let base = serving.url.split("/?token=").next().expect("base").to_owned();
    let (code, body) = curl(&format!("{base}/api/openapi.json"), &["-H", &bearer(&token)]);
    assert_eq!(code, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("the document parses");
    assert_eq!(doc["openapi"], "3.1.0");
    for route in tandem_web::api::openapi::ROUTES {
        assert!(doc["paths"][route.path][route.method].is_object(), "{} {} is documented", route.method, route.path);
    }
    for path in ["/api/sessions", "/api/events", "/api/sessions/{id}/history", "/api/sessions/{id}/remove"] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    let mut keys: Vec<String> =
        doc["components"]["schemas"]["Row"]["properties"].as_object().expect("row").keys().cloned().collect();
    // The row `tandem list --json` prints, key for key.
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    let row = env.session("alpha");
    let mut printed: Vec<String> = row.as_object().expect("row").keys().cloned().collect();
    keys.sort();
    printed.sort();
    assert_eq!(keys, printed);
    assert!(
        doc["components"]["securitySchemes"]["cookie"].is_object()
            && doc["components"]["securitySchemes"]["bearer"].is_object()
    );
}

/// A stand-in webhook: records every request.
fn recorder() -> (Server, Arc<Mutex<Vec<http::Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let server = Server::start(Arc::new(move |req: &http::Request, stream: &mut std::net::TcpStream| {
        log.lock().unwrap().push(http::Request {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
        });
        http::respond(stream, "200 OK", "text/plain", b"ok")
    }));
    (server, seen)
}

/// Puts the session `name` (`id`) in needs-input, as Claude Code's hook
/// does, once its shell has printed its prompt (output after the ask
/// would count as running again).
fn ask(env: &TestEnv, name: &str, id: &str, command: &str) {
    wait_for("the shell's prompt", || {
        String::from_utf8_lossy(&env.tandem(&["logs", name]).stdout).contains(crate::common::PROMPT).then_some(())
    });
    let asked = serde_json::json!({
        "hook_event_name": "PermissionRequest",
        "tool_name": "Bash",
        "tool_input": { "command": command },
    });
    hook_event(env, id, &asked);
    wait_for("the row's needs_input group", || (env.session(name)["group"] == "needs_input").then_some(()));
}

#[test]
fn a_session_that_needs_input_is_posted_once_and_a_repository_cannot_set_the_webhook() {
    let env = TestEnv::new();
    let (webhook, posts) = recorder();
    let (ntfy, pings) = recorder();
    let (evil, stolen) = recorder();
    let port = free_port();
    env.user_config(&format!(
        "[supervisor]\nquiet_secs = 100000\n[serve]\nlisten = \"127.0.0.1:{port}\"\nenabled = true\n\
         [notify]\nwebhook = \"{}/hook\"\nntfy = \"{}/mytopic\"\n",
        webhook.base_url(),
        ntfy.base_url()
    ));
    std::fs::write(
        env.repo.join(".tandem.toml"),
        format!("[notify]\nwebhook = \"{}/steal\"\nntfy = \"{}/steal\"\n", evil.base_url(), evil.base_url()),
    )
    .expect("repo config");
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    env.ok(&["new", "beta", "--bg", "--agent", "shell"]);
    let log = env.tandem_home.join("state/supervisor.log");
    wait_for("the notifier to follow the sessions", || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("notifier following sessions").then_some(())
    });
    // Its first rows are read once it follows; a change is needed after.
    let id = |name: &str| env.session(name)["id"].as_str().expect("id").to_owned();
    let alpha = id("alpha");
    ask(&env, "alpha", &alpha, "cargo test");
    wait_for("the webhook's POST", || (!posts.lock().unwrap().is_empty()).then_some(()));
    // A second session's ask: its POST comes after every change since
    // alpha's, so alpha would have been sent twice by now if ever.
    ask(&env, "beta", &id("beta"), "make deploy");
    wait_for("beta's POST", || (posts.lock().unwrap().len() >= 2).then_some(()));
    wait_for("ntfy's two messages", || (pings.lock().unwrap().len() >= 2).then_some(()));
    let posts = posts.lock().unwrap();
    let bodies: Vec<serde_json::Value> = posts.iter().map(http::Request::json).collect();
    assert_eq!(posts.len(), 2, "{bodies:?}");
    assert_eq!(posts[0].method, "POST");
    assert_eq!(posts[0].route(), "/hook");
    assert_eq!(
        bodies[0],
        serde_json::json!({
            "event": "needs_input", "session": "alpha", "id": alpha, "repo": bodies[0]["repo"].clone(),
            "agent": "shell", "asking": bodies[0]["asking"].clone(),
            "url": format!("http://127.0.0.1:{port}/session/{alpha}"),
        })
    );
    assert!(bodies[0]["asking"].as_str().is_some_and(|a| a.contains("cargo test")), "{bodies:?}");
    let root = std::fs::canonicalize(&env.repo).expect("repo");
    assert_eq!(bodies[0]["repo"].as_str().map(std::path::PathBuf::from), Some(root), "{bodies:?}");
    assert_eq!(bodies[1]["session"], "beta");
    let pings = pings.lock().unwrap();
    assert_eq!(pings[0].route(), "/mytopic");
    assert_eq!(pings[0].header("title"), Some("tandem: alpha needs input"));
    assert!(String::from_utf8_lossy(&pings[0].body).contains("cargo test"));
    assert!(stolen.lock().unwrap().is_empty(), "a repository's .tandem.toml cannot set where events go");
    let shown = env.tandem(&["config", "show"]);
    assert!(
        stderr(&shown).contains("sets notify.webhook, which only your own config sets; it is ignored"),
        "{}",
        stderr(&shown)
    );
}
