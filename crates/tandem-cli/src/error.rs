//! The one place errors become text: every core error is one line that
//! says what to do; exit codes follow jj (1 user error, 255 bug).

use std::fmt;

/// An error on its way to the user.
#[derive(Debug)]
pub enum CliError {
    /// Bad input or state the user can fix; exit 1.
    User(String),
    /// Something tandem should have handled; exit 255.
    Internal(String),
    /// stdout was closed (e.g. `tandem logs x | head`): exit quietly.
    BrokenPipe,
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::User(_) => 1,
            CliError::Internal(_) => 255,
            CliError::BrokenPipe => 0,
        }
    }

    pub fn user(message: impl Into<String>) -> CliError {
        CliError::User(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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

impl From<tandem_core::client::ClientError> for CliError {
    fn from(e: tandem_core::client::ClientError) -> CliError {
        if e.is_users() { CliError::User(tandem_core::error_chain(&e)) } else { CliError::Internal(e.to_string()) }
    }
}

macro_rules! user_errors {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> CliError {
                CliError::User(tandem_core::error_chain(&e))
            }
        }
    )*};
}

user_errors!(
    tandem_core::session::SessionError,
    tandem_core::repo::RepoError,
    tandem_core::paths::PathsError,
    tandem_core::config::ConfigError,
    tandem_core::store::StoreError,
    tandem_core::supervisor::SupervisorError,
    tandem_core::supervisor::client::ClientError,
    tandem_core::host::HostError,
    tandem_core::session::NameError,
    tandem_core::git::GitError,
);
