//! Who may talk to the server: the per-user token, and the `Host` and
//! `Origin` checks that keep other sites and rebinding DNS names out.
//!
//! - The token is 32 random bytes in hex, made once per user and kept in
//!   `<state>/web-token` (mode 0600). A request carries it as the
//!   `tandem_token` cookie (set by opening the login URL
//!   `/?token=…`, `HttpOnly; SameSite=Strict`) or as
//!   `Authorization: Bearer …` (scripts). Without it: 401.
//! - `Host` must name the address the server listens on (for a loopback
//!   address also `localhost`), so a page on a DNS name that rebinds to
//!   127.0.0.1 is refused (403).
//! - A request that changes something (any method but GET and HEAD) and
//!   every WebSocket upgrade must carry an `Origin` equal to the server's
//!   own (`http://` + `Host`), else 403: a cookie alone does not let
//!   another site act. A bearer-token request without `Origin` (not a
//!   browser) is let through: no cookie, no cross-site request.
//! - A browser's request to `/api/` from any page but the server's own
//!   (`Sec-Fetch-Site` other than `same-origin` or `none`) is 403: a page
//!   on another port of this host counts as the same site, and its
//!   requests carry the `SameSite=Strict` cookie.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use tandem_core::paths::{self, Paths};

use crate::WebError;
use crate::state::AppState;

/// The cookie the login URL sets.
pub const COOKIE: &str = "tandem_token";

/// The per-user token (hex).
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// The file the token is kept in: `<state>/web-token`, mode 0600.
    #[must_use]
    pub fn path(paths: &Paths) -> std::path::PathBuf {
        paths.state_dir.join("web-token")
    }

    /// Reads the user's token, making it (0600) the first time.
    ///
    /// # Errors
    /// [`WebError::Token`] when the file cannot be read or written, or
    /// holds no token.
    pub fn load_or_make(paths: &Paths) -> Result<Token, WebError> {
        let path = Self::path(paths);
        let error = |error| WebError::Token { path: path.clone(), error };
        paths.ensure_state_dir().map_err(|e| error(std::io::Error::other(e.to_string())))?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                paths::tighten(&path, 0o600).map_err(error)?;
                let token = text.trim();
                if token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Ok(Token(token.to_owned()));
                }
                Err(error(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "it holds no token; remove it and a new one is made",
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                paths::write_private(&path, format!("{token}\n").as_bytes()).map_err(error)?;
                Ok(Token(token))
            }
            Err(e) => Err(error(e)),
        }
    }

    /// The token's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, compared in constant time.
    #[must_use]
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// `addr` as the host part of a URL: `127.0.0.1:7878`, `[::1]:7878`.
#[must_use]
pub fn url_host(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// The `Host` values the server answers to when listening on `addr`.
#[must_use]
pub fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let mut hosts = vec![url_host(addr)];
    if addr.ip().is_loopback() {
        let port = addr.port();
        hosts.extend([format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Whether a request's `Host` names this server: one of `hosts`
/// ([`allowed_hosts`]), or, when it listens on every address
/// (`0.0.0.0`, `[::]`), any IP address with its port. An IP address
/// cannot be rebound by DNS, so only names are refused there.
#[must_use]
pub fn host_allowed(hosts: &[String], listen: SocketAddr, host: &str) -> bool {
    if hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return true;
    }
    listen.ip().is_unspecified() && host.parse::<SocketAddr>().is_ok_and(|h| h.port() == listen.port())
}

fn refuse(status: StatusCode, why: &str) -> Box<Response> {
    Box::new((status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{why}\n")).into_response())
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE).then_some(v)
    })
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// The middleware in front of every route: `Host`, then the token, then
/// `Origin` (see the module's text). A `?token=` on a GET sets the
/// cookie and redirects to the same path without it, so the token does
/// not stay in the address bar or the history. Every answer, a refusal
/// too, carries [`harden`]'s headers.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let mut response = match check(&state, &request) {
        Err(refusal) => *refusal,
        Ok(Some(login)) => login,
        Ok(None) => next.run(request).await,
    };
    harden(response.headers_mut());
    response
}

/// The headers every answer carries: no sniffing, no framing, no
/// `Referer` (a page's URL never leaves), no caching.
pub fn harden(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The one value of header `name`: `Ok(None)` when it is absent, `Err`
/// when it is given more than once (a request that names two hosts or
/// two origins is refused, whichever of them a check would read).
fn single<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(|_| ())).transpose()
}

/// `Sec-Fetch-Site`: which page a browser's request comes from.
static SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

fn other_page() -> Box<Response> {
    refuse(
        StatusCode::FORBIDDEN,
        "request from another page refused: only the dashboard's own pages may use its API; open the URL `tandem serve` printed",
    )
}

/// The guard's checks: `Err` a refusal, `Ok(Some)` the login redirect,
/// `Ok(None)` let through.
fn check(state: &AppState, request: &Request) -> Result<Option<Response>, Box<Response>> {
    let headers = request.headers();
    let wrong_host = || {
        refuse(
            StatusCode::FORBIDDEN,
            "this server answers only to the address it listens on; open the URL `tandem serve` printed",
        )
    };
    let ours = |h: &str| host_allowed(&state.hosts, state.addr, h);
    // An absolute-form target (`GET http://evil.example/ HTTP/1.1`) names
    // the host too; it must be ours as well. HTTP/2 (over TLS) carries
    // the host as the target's authority alone.
    let target = request.uri().authority().map(|a| a.as_str());
    let host = single(headers, &header::HOST).map_err(|()| wrong_host())?.or(target).unwrap_or("");
    if !ours(host) || target.is_some_and(|t| !ours(t)) {
        return Err(wrong_host());
    }
    let websocket = headers.get(header::UPGRADE).is_some();
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD) || websocket;
    let bearer = bearer_token(headers);
    let cookie = cookie_token(headers);
    if let Some(given) = query_token(request.uri().query())
        && request.method() == Method::GET
        && !websocket
    {
        if !state.token.matches(given) {
            return Err(refuse(StatusCode::UNAUTHORIZED, "wrong token; open the URL `tandem serve` printed"));
        }
        return Ok(Some(login(state, request.uri().path())));
    }
    let bearer_ok = bearer.is_some_and(|t| state.token.matches(t));
    if !(bearer_ok || cookie.is_some_and(|t| state.token.matches(t))) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "no valid token; open the URL `tandem serve` printed (the token is in ~/.local/state/tandem/web-token)",
        ));
    }
    // A page on another port of this host is the same site, so the
    // browser sends the cookie with its requests: its reads of the API
    // (a task's GET runs its check) are refused by the fetch metadata
    // every current browser sends. A typed URL says `none`; scripts send
    // no such header.
    let fetched_by = single(headers, &SEC_FETCH_SITE).map_err(|()| other_page())?;
    if request.uri().path().starts_with("/api/") && fetched_by.is_some_and(|s| !matches!(s, "same-origin" | "none")) {
        return Err(other_page());
    }
    if changes {
        let cross_site = || {
            refuse(
                StatusCode::FORBIDDEN,
                "cross-site request refused: its Origin is not this server's; use the dashboard's own page",
            )
        };
        let origin = single(headers, &header::ORIGIN).map_err(|()| cross_site())?;
        let own = |o: &str| o.strip_prefix(state.scheme).is_some_and(|h| h.eq_ignore_ascii_case(host));
        match origin {
            Some(o) if own(o) => {}
            // A script with the (right) bearer token and no Origin is no
            // browser; a cookie with a wrong bearer beside it is no script.
            None if bearer_ok => {}
            _ => return Err(cross_site()),
        }
    }
    Ok(None)
}

/// The login answer: the cookie, and a redirect to `path` on this server
/// (a path that a browser would read as another host's, `//evil.example`
/// or `/\evil.example`, goes to `/` instead).
fn login(state: &AppState, path: &str) -> Response {
    // Under TLS the cookie is never sent over plain HTTP.
    let secure = if state.scheme == "https://" { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}", state.token.as_str());
    let elsewhere = path.starts_with("//") || path.starts_with("/\\") || !path.starts_with('/');
    let to = if elsewhere { "/" } else { path };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_to_localhost_too_and_others_only_to_their_address() {
        let hosts = allowed_hosts("127.0.0.1:7878".parse().unwrap());
        assert!(hosts.contains(&"localhost:7878".to_owned()));
        assert!(!hosts.contains(&"evil.example:7878".to_owned()));
        let hosts = allowed_hosts("192.168.1.5:80".parse().unwrap());
        assert_eq!(hosts, vec!["192.168.1.5:80".to_owned()]);
        let any: SocketAddr = "0.0.0.0:7878".parse().unwrap();
        assert!(host_allowed(&allowed_hosts(any), any, "10.1.2.3:7878"));
        assert!(!host_allowed(&allowed_hosts(any), any, "rebound.example:7878"));
        assert!(!host_allowed(&allowed_hosts(any), any, "10.1.2.3:80"));
        let one: SocketAddr = "192.168.1.5:80".parse().unwrap();
        assert!(!host_allowed(&allowed_hosts(one), one, "10.1.2.3:80"));
    }

    #[test]
    fn tokens_compare_whole() {
        let token = Token("ab".repeat(32));
        assert!(token.matches(&"ab".repeat(32)));
        assert!(!token.matches(&"ab".repeat(31)));
        assert!(!token.matches(""));
    }
}
