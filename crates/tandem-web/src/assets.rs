//! The pages, scripts and styles, embedded in the binary: the server
//! needs no files and no network at run time. Third-party files under
//! `assets/vendor/` are committed built, with their licenses beside them
//! (`scripts/vendor-web.sh` fetches them again from npm).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every page: scripts only from this
/// server's own files (no inline script runs, so text an agent wrote
/// cannot become a script even if a page failed to escape it).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its name under `/assets/`, its type and bytes.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset { name: $name, content_type: $type, bytes: include_bytes!(concat!("../assets/", $name)) }
    };
}

/// Every embedded file.
pub const ASSETS: &[Asset] = &[
    asset!("dashboard.html", "text/html; charset=utf-8"),
    asset!("dashboard.js", "text/javascript; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("session.html", "text/html; charset=utf-8"),
    asset!("session.js", "text/javascript; charset=utf-8"),
    asset!("session.css", "text/css; charset=utf-8"),
    asset!("vendor/xterm.js", "text/javascript; charset=utf-8"),
    asset!("vendor/xterm.css", "text/css; charset=utf-8"),
    asset!("vendor/xterm-addon-fit.js", "text/javascript; charset=utf-8"),
    asset!("vendor/highlight.min.js", "text/javascript; charset=utf-8"),
    asset!("vendor/highlight-github-dark.min.css", "text/css; charset=utf-8"),
    asset!("vendor/xterm.LICENSE", "text/plain; charset=utf-8"),
    asset!("vendor/xterm-addon-fit.LICENSE", "text/plain; charset=utf-8"),
    asset!("vendor/highlight.LICENSE", "text/plain; charset=utf-8"),
];

/// The file called `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// An embedded file as a response (HTML pages with [`CSP`]).
#[must_use]
pub fn respond(asset: &Asset) -> Response {
    let mut response = (StatusCode::OK, asset.bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if asset.content_type.starts_with("text/html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    response
}

/// `GET /assets/{name}`.
pub async fn get(Path(name): Path<String>) -> Response {
    match find(&name) {
        Some(asset) => respond(asset),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// `GET /assets/vendor/{name}`: the third-party files (and their
/// licenses) under `assets/vendor/`.
pub async fn get_vendor(Path(name): Path<String>) -> Response {
    match find(&format!("vendor/{name}")) {
        Some(asset) => respond(asset),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// A page: the embedded HTML file `name`.
#[must_use]
pub fn page(name: &str) -> Response {
    match find(name) {
        Some(asset) => respond(asset),
        None => (StatusCode::NOT_FOUND, "no such page\n").into_response(),
    }
}
