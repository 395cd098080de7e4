//! tandem-core: everything in tandem that is not a terminal.
//!
//! `tandem-cli` parses arguments and renders; this crate owns the parts
//! underneath: where state lives ([`paths`]), the git CLI ([`git`]), the
//! SQLite store ([`store`]), session lifecycle ([`session`]), what is
//! built on sessions (shipping their work, [`ship`]; [`conflicts`]
//! between them; [`tasks`] and trials), agents
//! ([`agent`]), the per-session host that owns an agent's PTY ([`host`]),
//! the per-user supervisor daemon ([`supervisor`]), the wire types
//! between them ([`protocol`]) and the plain data those carry
//! ([`model`]), how untrusted text is printed ([`text`]), and each
//! error's kind and hints ([`error`]).

pub mod agent;
pub mod checkpoints;
pub mod client;
pub mod config;
pub mod conflicts;
pub mod connection;
pub mod error;
pub mod fault;
pub mod git;
pub mod host;
pub mod limits;
pub mod model;
pub mod paths;
pub mod process;
pub mod protocol;
pub mod remote;
pub mod repo;
pub mod rows;
pub mod sandbox;
pub mod sandbox_git;
pub mod secrets;
pub mod session;
pub mod ship;
pub mod socket;
pub mod store;
pub mod supervisor;
pub mod tasks;
pub mod text;

/// Seconds since the Unix epoch, as stored in the database.
#[must_use]
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A short age for `seconds`: `42s`, `5m`, `3h`, `2d` (negative counts as
/// zero).
#[must_use]
pub fn short_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// An error and its sources on one line, `outer: inner: cause`, skipping a
/// source whose text the line already holds.
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let (mut text, causes) = error_parts(e);
    for cause in causes {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// An error's own text and the texts of its sources that
/// [`error_chain`] appends, in order: what the CLI prints as `error:`
/// and `caused by:` lines.
#[must_use]
pub fn error_parts(e: &dyn std::error::Error) -> (String, Vec<String>) {
    let head = e.to_string();
    let mut text = head.clone();
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
            causes.push(s_text);
        }
        source = s.source();
    }
    (head, causes)
}
