//! `tandem serve`: the web dashboard and its HTTP API.
//!
//! An axum server on a tokio runtime. Every page and every JSON answer is
//! made from the core model the CLI uses: rows from
//! [`tandem_core::client::Tandem::rows`] in the `tandem list --json` shape
//! ([`tandem_core::rows::columns::json`]), actions through the same
//! [`Tandem`] methods, live updates from the supervisor's change stream
//! ([`Tandem::subscribe`]). No front end keeps its own copy of list,
//! state or action logic.
//!
//! Security (docs/web.md): every request carries the per-user token
//! ([`auth`]), as a cookie the token URL sets or as a bearer header;
//! `Host` is checked on every request and `Origin` on every
//! state-changing one and every WebSocket; pages are served with a
//! strict Content-Security-Policy and render what agents and
//! repositories wrote as text.

pub mod api;
pub mod assets;
pub mod auth;
pub mod live;
pub mod notify;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tandem_core::client::Tandem;

pub use state::AppState;

/// Why the server did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The address is taken or not ours to listen on.
    #[error("cannot listen on {addr}: {error}; pick another with `tandem serve --listen 127.0.0.1:PORT`")]
    Listen {
        addr: SocketAddr,
        #[source]
        error: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error(
        "cannot use the TLS certificate {} and key {}: {error}; give PEM files (`--tls-cert cert.pem --tls-key key.pem`)",
        cert.display(),
        key.display()
    )]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// The token file could not be read or made.
    #[error("cannot read or make the token file {path}: {error}")]
    Token {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How `tandem serve` listens.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address and port; loopback unless the user asked otherwise.
    pub listen: SocketAddr,
    /// Only this repository's sessions (its main worktree); `None`: every
    /// repository tandem knows.
    pub repo: Option<PathBuf>,
    /// `supervisor.quiet_secs`: after this many seconds without a report
    /// an agent is taken to be idle.
    pub quiet_secs: u64,
    /// PEM certificate chain and private key: HTTPS; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// The PEM files HTTPS is served with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl ServeOptions {
    /// `https` with TLS, else `http`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// The URL that logs a browser in to a server listening on `addr` with
/// `token`: `SCHEME://HOST:PORT/?token=…`.
#[must_use]
pub fn login_url(scheme: &str, addr: SocketAddr, token: &auth::Token) -> String {
    format!("{scheme}://{}/?token={}", auth::url_host(addr), token.as_str())
}

/// A server that listens: its address (the port is known even when 0
/// was asked for) and the URL with the token a browser opens first.
pub struct Bound {
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    state: Arc<AppState>,
}

impl Bound {
    /// The URL that logs a browser in: `http(s)://HOST:PORT/?token=…`.
    #[must_use]
    pub fn login_url(&self) -> String {
        login_url(self.state.options.scheme(), self.addr, &self.state.token)
    }
}

/// Binds `options.listen` and makes the server's state (the token, the
/// live rows) inside `runtime`.
///
/// # Errors
/// [`WebError::Listen`], [`WebError::Token`], [`WebError::Tls`].
pub fn bind(runtime: &tokio::runtime::Runtime, tandem: Tandem, options: ServeOptions) -> Result<Bound, WebError> {
    let token = auth::Token::load_or_make(&tandem.paths)?;
    let tls = match &options.tls {
        Some(files) => Some(
            runtime
                .block_on(axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key))
                .map_err(|error| WebError::Tls { cert: files.cert.clone(), key: files.key.clone(), error })?,
        ),
        None => None,
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.listen))
        .map_err(|error| WebError::Listen { addr: options.listen, error })?;
    let addr = listener.local_addr()?;
    let state = {
        let _guard = runtime.enter();
        AppState::new(tandem, options, token, addr)
    };
    Ok(Bound { addr, listener, tls, state })
}

/// Serves until the process is interrupted (Ctrl-C, SIGTERM).
///
/// # Errors
/// I/O errors of the listener.
pub fn run(runtime: &tokio::runtime::Runtime, bound: Bound) -> Result<(), WebError> {
    let app = api::router(bound.state.clone());
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    runtime.block_on(async move {
        match bound.tls {
            None => axum::serve(bound.listener, make_service).with_graceful_shutdown(shutdown()).await,
            Some(tls) => {
                let handle = axum_server::Handle::new();
                let stopping = handle.clone();
                tokio::spawn(async move {
                    shutdown().await;
                    stopping.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                });
                axum_server::from_tcp_rustls(bound.listener.into_std()?, tls)?.handle(handle).serve(make_service).await
            }
        }
    })?;
    Ok(())
}

/// A runtime for [`bind`] and [`run`]: two worker threads are plenty for
/// one user's pages; blocking calls to the supervisor go to tokio's
/// blocking pool.
///
/// # Errors
/// I/O errors making the runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime, WebError> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
