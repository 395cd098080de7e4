//! What every handler shares.

use std::net::SocketAddr;
use std::sync::Arc;

use tandem_core::client::Tandem;
use tokio::sync::watch;

use crate::ServeOptions;
use crate::auth::{self, Token};
use crate::live::{self, Snapshot};

/// The server's state: the typed client, the options, the token, the
/// `Host` values it answers to and the latest rows.
pub struct AppState {
    pub tandem: Tandem,
    pub options: ServeOptions,
    pub token: Token,
    /// [`auth::allowed_hosts`] for the bound address.
    pub hosts: Vec<String>,
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// `http://` or `https://`: what a same-origin `Origin` starts with.
    pub scheme: &'static str,
    /// The rows of every repository shown, remade on each change the
    /// supervisor reports ([`live`]).
    pub live: watch::Receiver<Arc<Snapshot>>,
}

impl AppState {
    /// Makes the state and starts [`live::follow`]; must run inside a
    /// tokio runtime.
    #[must_use]
    pub fn new(tandem: Tandem, options: ServeOptions, token: Token, addr: SocketAddr) -> Arc<AppState> {
        let live = live::follow(tandem.clone(), options.clone());
        let scheme = if options.tls.is_some() { "https://" } else { "http://" };
        Arc::new(AppState { tandem, options, token, hosts: auth::allowed_hosts(addr), addr, scheme, live })
    }
}
