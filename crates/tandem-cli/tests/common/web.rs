//! `tandem serve` for tests: the real binary on a free loopback port,
//! requests over plain `std` TCP (HTTP/1.1) and WebSockets with
//! `tungstenite` (a sync client). Ended by pid when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::TestEnv;

/// A running `tandem serve --listen 127.0.0.1:0`.
pub struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The per-user token from the login URL it printed.
    pub token: String,
}

/// An answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Serve {
    /// Starts the server in the test's repository and reads the URL it
    /// prints.
    pub fn start(env: &TestEnv) -> Serve {
        let mut child = env
            .command_in(&env.repo, &["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tandem serve starts");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut line).expect("serve prints its URL");
        // Read on, so the server never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("a login URL: {line}"));
        let (host, query) = rest.split_once("/?token=").unwrap_or_else(|| panic!("a token in {url}"));
        Serve { child, host: host.to_owned(), token: query.to_owned() }
    }

    /// `GET path` with the bearer token.
    pub fn get(&self, path: &str) -> Answer {
        let mut stream = TcpStream::connect(&self.host).expect("connect to tandem serve");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.host, self.token
        );
        stream.write_all(request.as_bytes()).expect("send the request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the answer");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let body = &raw[split + 4..];
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
        let body = if chunked { unchunk(body) } else { body.to_vec() };
        Answer { status, body: String::from_utf8_lossy(&body).into_owned() }
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
        let own = format!("http://{}", self.host);
        let headers = request.headers_mut();
        headers.insert("Origin", origin.unwrap_or(&own).parse().expect("a header"));
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

fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..line]).trim().to_owned();
        let Ok(size) = usize::from_str_radix(&size, 16) else { break };
        let rest = &body[line + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
