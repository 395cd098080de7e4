//! What kind of failure an error is and what to do next, kept apart from
//! its message so both survive the socket (issue 18).
//!
//! Core errors are typed where they are made (`SessionError`,
//! `StoreError`, `GitError`, …). [`Kinded`] gives each variant its
//! [`ErrorKind`] and, for some, hints naming the next command; every
//! mapping lives in `crate::error` (`error/kinds.rs`) and matches
//! variants, never text. The
//! supervisor turns a refusal into a [`Failure`] before it crosses the
//! socket (`Response::Error { kind, message, hints }`), so the CLI, and
//! later the web and MCP front ends, still know that a session was not
//! found or that work would be lost, and choose their exit code (or HTTP
//! status) by kind. This file holds plain data only, no I/O and no
//! imports from the rest of the crate, so `protocol` can use it without
//! an import circle.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of failure an error is: what a front end needs to choose an
/// exit code or a status, and whether trying again can help. The kinds
/// follow HTTP's (404, 400, 409, 503, 500) so a web front end maps them
/// one to one. On the wire: `"not_found"`, `"invalid_input"`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Something the request names does not exist: a session, a ref, a
    /// remote, an agent program, a file.
    NotFound,
    /// The request is wrong as given: a name, a value, a flag or a config
    /// entry; fixing it and asking again works.
    InvalidInput,
    /// The current state forbids it until someone acts: work would be
    /// lost, a name is taken, a session is archived, a merge is under way.
    Conflict,
    /// Something needed does not answer or is not installed: the
    /// supervisor, GitHub, git itself, bubblewrap, a container engine.
    Unavailable,
    /// A bug in tandem: an answer that cannot happen.
    Internal,
    /// A step failed in the environment: a git command, the disk, the
    /// database, a hook. Also the kind of an error from a peer too old to
    /// name one (or naming one this build does not know). Last, as
    /// `serde(other)` requires.
    #[default]
    #[serde(other)]
    Failed,
}

/// An error as a front end receives it: its kind, its one-line message
/// (facts and causes included) and hints, each a sentence naming the next
/// command to type. This is what `Response::Error` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default)]
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default)]
    pub hints: Vec<String>,
    /// The texts of the causes at the end of `message` (`message` ends
    /// with `: cause` for each), so a front end can print them on lines
    /// of their own; empty from a peer that does not send them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
}

impl Failure {
    /// A failure of `kind` without hints.
    #[must_use]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure { kind, message: message.into(), hints: Vec::new(), causes: Vec::new() }
    }

    /// This failure with one more hint.
    #[must_use]
    pub fn hinted(mut self, hint: impl Into<String>) -> Failure {
        self.hints.push(hint.into());
        self
    }

    /// `error`'s kind, its message with its causes
    /// ([`crate::error_chain`]) and its hints.
    #[must_use]
    pub fn of<E: Kinded>(error: &E) -> Failure {
        let (_, causes) = crate::error_parts(error);
        Failure { kind: error.kind(), message: crate::error_chain(error), hints: error.hints(), causes }
    }

    /// The message without its causes: `message` less the `: cause`
    /// suffixes that `causes` lists (all of `message` when they do not
    /// match its end).
    #[must_use]
    pub fn head(&self) -> &str {
        let suffix: String = self.causes.iter().map(|c| format!(": {c}")).collect();
        self.message.strip_suffix(suffix.as_str()).unwrap_or(&self.message)
    }
}

/// One line: the message, then each hint after `; `, as tandem's errors
/// have always read (`no session named `x` in this repository; `tandem
/// list` shows the sessions`).
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for hint in &self.hints {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// An error that knows its [`ErrorKind`] and the hints that go with it.
/// Its `Display` is the message alone: what is wrong, with its facts; the
/// next step is a hint, which the edge prints ([`Failure`]'s `Display`).
pub trait Kinded: std::error::Error {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;

    /// Sentences naming the next command, kept out of the message; none
    /// by default.
    fn hints(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_prints_its_hints_on_its_line() {
        let f = Failure::new(ErrorKind::NotFound, "no session named `x`").hinted("`tandem list` shows the sessions");
        assert_eq!(f.to_string(), "no session named `x`; `tandem list` shows the sessions");
    }

    #[test]
    fn kinds_are_snake_case_on_the_wire_and_unknown_ones_read_as_failed() {
        assert_eq!(serde_json::to_string(&ErrorKind::NotFound).expect("json"), "\"not_found\"");
        assert_eq!(serde_json::to_string(&ErrorKind::InvalidInput).expect("json"), "\"invalid_input\"");
        let kind: ErrorKind = serde_json::from_str("\"gone_fishing\"").expect("an unknown kind");
        assert_eq!(kind, ErrorKind::Failed);
    }
}
