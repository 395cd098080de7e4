//! The one place errors become text and exit codes (issue 18).
//!
//! Core errors arrive typed, either from this process or as the
//! supervisor's `Response::Error` ([`ClientError::Remote`]); the `From`
//! impls below keep their kind, causes and hints
//! ([`tandem_core::error::Kinded`]), and [`CliError::report`] prints them
//! as jj and git do, each part on its own line (issue 19):
//!
//! ```text
//! error: cannot read /home/u/.config/tandem/config.toml
//! caused by: Permission denied (os error 13)
//! hint: fix the file's permissions, or run `tandem config path`
//! ```
//!
//! The first line alone still says what went wrong (the view shows a
//! failed action's first line of stderr). Exit codes: [`exit_code`];
//! both are documented for users in `docs/errors.md` and
//! `tandem --help`.
//!
//! [`ClientError::Remote`]: tandem_core::connection::ClientError::Remote

use std::fmt;
use std::io::Write;

use tandem_core::error::{ErrorKind, Failure};

/// An error on its way to the user.
#[derive(Debug)]
pub enum CliError {
    /// A core error, from this process or the supervisor: its kind,
    /// message and hints.
    Failed(Failure),
    /// Bad input or state the user can fix, found by the CLI itself;
    /// kind `invalid_input`.
    User(String),
    /// Something tandem should have handled; kind `internal`.
    Internal(String),
    /// stdout was closed (e.g. `tandem logs x | head`): exit quietly.
    BrokenPipe,
}

/// The exit code of an error of `kind`, as jj's: 1 for anything the user
/// can act on, 255 for a bug. clap's usage errors exit 2 before any of
/// this runs; a broken pipe exits 0.
///
/// | kind | exit |
/// |---|---|
/// | `not_found`, `invalid_input`, `conflict`, `unavailable`, `failed` | 1 |
/// | (usage, from clap) | 2 |
/// | `internal` | 255 |
///
/// Not found, would lose work and unavailable share 1: the integration
/// tests pin exit 1 for each (`TestEnv::fails`), and scripts tell them
/// apart by the message. A distinct code is one arm here.
#[must_use]
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound
        | ErrorKind::InvalidInput
        | ErrorKind::Conflict
        | ErrorKind::Unavailable
        | ErrorKind::Failed => 1,
        ErrorKind::Internal => 255,
    }
}

impl CliError {
    /// Bad input or state, found by the CLI itself.
    pub fn user(message: impl Into<String>) -> CliError {
        CliError::User(message.into())
    }

    /// What kind of failure this is; `None` for a broken pipe.
    #[must_use]
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            CliError::Failed(f) => Some(f.kind),
            CliError::User(_) => Some(ErrorKind::InvalidInput),
            CliError::Internal(_) => Some(ErrorKind::Internal),
            CliError::BrokenPipe => None,
        }
    }

    /// The process's exit code: [`exit_code`] of its kind, 0 for a
    /// broken pipe.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        self.kind().map_or(0, exit_code)
    }

    /// Prints the error to `w` (stderr): `error: ` and the message, then
    /// a `caused by: ` line per cause and a `hint: ` line per hint, its
    /// untrusted text made visible (it may quote a repository's or an
    /// agent's text); nothing for a broken pipe.
    ///
    /// # Errors
    /// Writing to `w`.
    pub fn report(&self, w: &mut dyn Write) -> std::io::Result<()> {
        use tandem_core::text::visible;
        match self {
            CliError::BrokenPipe => Ok(()),
            CliError::Failed(f) => {
                writeln!(w, "error: {}", visible(f.head()))?;
                for cause in &f.causes {
                    writeln!(w, "caused by: {}", visible(cause))?;
                }
                for hint in &f.hints {
                    writeln!(w, "hint: {}", visible(hint))?;
                }
                Ok(())
            }
            CliError::User(m) => writeln!(w, "error: {}", visible(m)),
            CliError::Internal(m) => {
                writeln!(w, "error: {}", visible(m))?;
                writeln!(w, "hint: this is a bug in tandem; please report it")
            }
        }
    }
}

/// The error's line without `error: `: the message, then its hints.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Failed(failure) => failure.fmt(f),
            CliError::User(m) => f.write_str(m),
            CliError::Internal(m) => write!(f, "{m} (this is a bug in tandem; please report it)"),
            CliError::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe { CliError::BrokenPipe } else { CliError::User(e.to_string()) }
    }
}

impl From<Failure> for CliError {
    fn from(f: Failure) -> CliError {
        CliError::Failed(f)
    }
}

/// Core errors keep their kind, their causes (on the message) and their
/// hints.
macro_rules! core_errors {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> CliError {
                CliError::Failed(Failure::of(&e))
            }
        }
    )*};
}

core_errors!(
    tandem_core::client::ClientError,
    tandem_core::session::SessionError,
    tandem_core::repo::RepoError,
    tandem_core::paths::PathsError,
    tandem_core::config::ConfigError,
    tandem_core::store::StoreError,
    tandem_core::supervisor::SupervisorError,
    tandem_core::connection::ClientError,
    tandem_core::host::HostError,
    tandem_core::session::NameError,
    tandem_core::git::GitError,
    tandem_core::ship::ShipError,
    tandem_core::sandbox_git::PrivateGitError,
);

#[cfg(test)]
mod tests {
    use tandem_core::connection::ClientError;
    use tandem_core::session::SessionError;

    use super::*;

    fn reported(e: &CliError) -> String {
        let mut out = Vec::new();
        e.report(&mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    /// A refusal from the supervisor prints as the same error made here:
    /// the hint once, on its own line, exit by kind.
    #[test]
    fn a_remote_refusal_prints_like_a_local_one() {
        let local = CliError::from(SessionError::NotFound { name: "x".into() });
        let remote = CliError::from(ClientError::Remote(Failure::of(&SessionError::NotFound { name: "x".into() })));
        let line = "error: no session named `x` in this repository\nhint: `tandem list` shows the sessions\n";
        assert_eq!(reported(&local), line);
        assert_eq!(reported(&remote), line);
        assert_eq!(remote.kind(), Some(ErrorKind::NotFound));
        assert_eq!(remote.exit_code(), 1);
        assert_eq!(CliError::Internal("x".into()).exit_code(), 255);
        assert_eq!(reported(&CliError::BrokenPipe), "");
    }

    /// Issue 19: each cause on a `caused by:` line after the message.
    #[test]
    fn causes_print_on_lines_of_their_own() {
        let f = Failure {
            kind: ErrorKind::Failed,
            message: "cannot read f: denied".into(),
            hints: vec!["run `tandem config path`".into()],
            causes: vec!["denied".into()],
        };
        assert_eq!(
            reported(&CliError::Failed(f)),
            "error: cannot read f\ncaused by: denied\nhint: run `tandem config path`\n"
        );
    }
}
