//! The notifier (`[notify]`, issue 20): when a session newly needs input
//! it POSTs the event to the user's webhook as JSON and to their ntfy
//! topic as a text message.
//!
//! It runs as the supervisor's companion
//! ([`tandem_core::supervisor::companions`]), so it sends whenever the
//! supervisor runs, with or without a dashboard or terminal open. It
//! follows the same rows as the pages ([`live::follow`]) and finds the
//! sessions that entered `needs_input` with [`live::entered`], the same
//! transition pages show; no second state logic.
//!
//! Only the user's config names the URLs: a repository's `.tandem.toml`
//! cannot set them ([`tandem_core::config::repo_trust`]).
//!
//! The webhook gets
//! `{"event":"needs_input","session":NAME,"id":ID,"repo":ROOT,"agent":AGENT,"asking":TEXT|null,"url":URL|null}`
//! (`repo`: the repository's main worktree);
//! `url` is the session's dashboard page when `[serve] enabled` (without
//! the token). ntfy gets the question as the body, `Title: NAME needs
//! input` and, with a dashboard, `Click: URL`.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tandem_core::client::Tandem;
use tandem_core::config::Config;

use crate::live::{self, Entered};
use crate::{ServeOptions, WebError};

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the events go.
#[derive(Debug, Clone)]
pub struct Targets {
    /// `notify.webhook`, or `None`.
    pub webhook: Option<String>,
    /// `notify.ntfy`, or `None`.
    pub ntfy: Option<String>,
    /// The dashboard's base URL (`http://127.0.0.1:7878`) when the
    /// supervisor serves it.
    pub dashboard: Option<String>,
}

impl Targets {
    /// The targets the user's `config` names.
    #[must_use]
    pub fn of(config: &Config) -> Targets {
        let some = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
        let dashboard = config.serve.enabled.then(|| {
            let tls = !config.serve.tls_cert.is_empty() && !config.serve.tls_key.is_empty();
            let host = config
                .serve
                .listen
                .parse::<SocketAddr>()
                .map_or_else(|_| config.serve.listen.clone(), crate::auth::url_host);
            format!("{}://{host}", if tls { "https" } else { "http" })
        });
        Targets { webhook: some(&config.notify.webhook), ntfy: some(&config.notify.ntfy), dashboard }
    }
}

/// The webhook's JSON for a session that entered needs-input.
#[must_use]
pub fn event(entered: &Entered, dashboard: Option<&str>) -> Value {
    let row = &entered.row;
    let field = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
    let url = match (dashboard, row.get("id").and_then(Value::as_str)) {
        (Some(base), Some(id)) => Value::from(format!("{base}/session/{id}")),
        _ => Value::Null,
    };
    json!({
        "event": "needs_input",
        "session": field("name"),
        "id": field("id"),
        "repo": entered.root,
        "agent": field("agent"),
        "asking": field("asking"),
        "url": url,
    })
}

/// Follows the rows for ever and sends each session that enters
/// needs-input to `config`'s targets. Returns at once (`Ok`) when none
/// is set.
///
/// # Errors
/// [`WebError::Io`] when its runtime cannot be made.
pub fn run(tandem: Tandem, config: &Config) -> Result<(), WebError> {
    let targets = Targets::of(config);
    if targets.webhook.is_none() && targets.ntfy.is_none() {
        return Ok(());
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let options = ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        repo: None,
        quiet_secs: config.supervisor.quiet_secs,
        tls: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut rows = live::follow(tandem, options);
    let mut before = rows.borrow_and_update().clone();
    tracing::info!("notifier following sessions");
    runtime.block_on(async move {
        while rows.changed().await.is_ok() {
            let after = rows.borrow_and_update().clone();
            if after.error.is_some() {
                // Keep the last good rows: the supervisor is coming back.
                continue;
            }
            let entered = live::entered(&before, &after, "needs_input");
            tracing::debug!(generation = after.generation, entered = entered.len(), "rows changed");
            before = after;
            if entered.is_empty() {
                continue;
            }
            let (agent, targets) = (agent.clone(), targets.clone());
            // Blocking sends; the next change waits for them, in order.
            let _ = tokio::task::spawn_blocking(move || {
                for one in &entered {
                    send(&agent, &targets, one);
                }
            })
            .await;
        }
    });
    Ok(())
}

/// POSTs one event to each target; failures are logged, not retried
/// (a missed ping is better than a late one).
fn send(agent: &ureq::Agent, targets: &Targets, entered: &Entered) {
    let body = event(entered, targets.dashboard.as_deref());
    if let Some(url) = &targets.webhook {
        match agent.post(url).send_json(&body) {
            Ok(r) if r.status().is_success() => tracing::info!(url, "notified the webhook"),
            Ok(r) => tracing::warn!(url, status = r.status().as_u16(), "the webhook refused the notification"),
            Err(e) => tracing::warn!(url, error = %e, "cannot reach the webhook"),
        }
    }
    if let Some(url) = &targets.ntfy {
        let name = body["session"].as_str().unwrap_or("a session");
        let title = header_text(&format!("tandem: {name} needs input"));
        let text = body["asking"].as_str().map_or_else(|| format!("{name} is waiting for you"), str::to_owned);
        let mut request = agent.post(url).header("Title", &title).header("Tags", "bell");
        if let Some(click) = body["url"].as_str() {
            request = request.header("Click", click);
        }
        match request.send(text.as_bytes()) {
            Ok(r) if r.status().is_success() => tracing::info!(url, "notified ntfy"),
            Ok(r) => tracing::warn!(url, status = r.status().as_u16(), "ntfy refused the notification"),
            Err(e) => tracing::warn!(url, error = %e, "cannot reach ntfy"),
        }
    }
}

/// `text` fit for an HTTP header: printable ASCII, at most 200 bytes
/// (a session name or question is untrusted text).
fn header_text(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_no_control_or_non_ascii_characters() {
        assert_eq!(header_text("a\r\nX-Evil: 1 é"), "a??X-Evil: 1 ?");
    }
}
