//! `tandem serve` for tests: the real binary on a free loopback port,
//! talked to over plain HTTP with its bearer token and a same-site
//! `Origin` (`ureq`), as a script would with no `Origin`
//! ([`Serve::request`]), byte for byte as a browser would ([`Serve::raw`],
//! plain `std` TCP), and over WebSockets with `tungstenite` (a sync
//! client). Ended (by its pid) when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::TestEnv;

/// A running `tandem serve --listen 127.0.0.1:0`.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The per-user token from the login URL it printed.
    pub token: String,
    agent: ureq::Agent,
}

/// An answer: its status, headers and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub text: String,
    /// The same as `text` (the name the session API's tests use).
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Serve {
    /// Starts `tandem serve --listen 127.0.0.1:0` in `env`'s repository
    /// and reads the URL it prints first (with the bound port).
    pub fn start(env: &TestEnv) -> Serve {
        let mut child = env
            .command_in(&env.repo, &["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tandem serve");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read serve's first line");
        // Read on, so the server never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        let (base, token) = url.split_once("/?token=").unwrap_or_else(|| panic!("no login URL in {line:?}"));
        let host = base.strip_prefix("http://").unwrap_or_else(|| panic!("a login URL: {line}")).to_owned();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Serve { child, base: base.to_owned(), host, token: token.to_owned(), agent }
    }

    fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut response = response.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().expect("a text body");
        Answer { status, headers, body: text.clone(), text }
    }

    /// `GET path` with the token.
    pub fn get(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.base);
        Self::answer(self.agent.get(&url).header("Authorization", &format!("Bearer {}", self.token)).call())
    }

    /// `POST path` with the token, the server's own `Origin` (as the
    /// dashboard's page sends it) and `body` as JSON.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> Answer {
        let url = format!("{}{path}", self.base);
        Self::answer(
            self.agent
                .post(&url)
                .header("Authorization", &format!("Bearer {}", self.token))
                .header("Origin", &self.base)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
        )
    }

    /// `GET /api/events`: each `sessions` event's data, parsed, sent on
    /// the returned channel as it arrives (a thread reads the stream
    /// until the server or the receiver goes).
    pub fn events(&self) -> std::sync::mpsc::Receiver<serde_json::Value> {
        let url = format!("{}/api/events", self.base);
        let response = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Accept", "text/event-stream")
            .call()
            .expect("the event stream opens");
        assert_eq!(response.status().as_u16(), 200);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(response.into_body().into_reader());
        std::thread::spawn(move || {
            let mut event = String::new();
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_owned();
                } else if let Some(data) = line.strip_prefix("data:")
                    && event == "sessions"
                {
                    let Ok(value) = serde_json::from_str(data.trim_start()) else { continue };
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    /// `GET path`, asserting 200, as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let answer = self.get(path);
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.text);
        answer.json()
    }

    /// `method path` with the token and no `Origin` (as a script sends
    /// it), `body` as JSON when given.
    pub fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Answer {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let body = body.map(|b| serde_json::to_vec(b).expect("json"));
        self.raw(method, path, &headers, body.as_deref())
    }

    /// One HTTP/1.1 request with exactly these headers (plus `Host`,
    /// `Content-Length` and `Connection: close`) over a plain TCP stream;
    /// the answer's header names are lowercase.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Answer {
        let mut stream = TcpStream::connect(&self.host).expect("connect to tandem serve");
        // Long enough for a check or a session's creation.
        stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
        let body = body.unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.host);
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).expect("send");
        stream.write_all(body).expect("send");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).expect("read the answer");
        parse(&bytes)
    }

    /// `POST /api/sessions/{id}/{action}`.
    pub fn act(&self, id: &str, action: &str, body: &serde_json::Value) -> Answer {
        self.post(&format!("/api/sessions/{id}/{action}"), body)
    }

    /// The WebSocket at `path`; `origin` as the `Origin` header (`None`:
    /// the server's own), with the token unless `token` is false.
    pub fn websocket(
        &self,
        path: &str,
        origin: Option<&str>,
        token: bool,
    ) -> Result<tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>, tungstenite::Error> {
        use tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}{path}", self.host).into_client_request().expect("a request");
        let headers = request.headers_mut();
        headers.insert("Origin", origin.unwrap_or(&self.base).parse().expect("a header"));
        if token {
            headers.insert("Cookie", format!("tandem_token={}", self.token).parse().expect("a header"));
        }
        let (socket, _) = tungstenite::connect(request)?;
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        }
        Ok(socket)
    }
}

/// An HTTP/1.1 answer as read off the wire (chunked bodies joined).
fn parse(bytes: &[u8]) -> Answer {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    Answer { status, headers, body: text.clone(), text }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&bytes[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&bytes[start..(start + size).min(bytes.len())]);
        bytes = &bytes[(start + size + 2).min(bytes.len())..];
    }
    out
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only the process this test started, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
