//! Errors as the API answers them: a status and `{"error": "…"}` with
//! the same words the CLI prints.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tandem_core::client::ClientError;
use tandem_core::error::{ErrorKind, Failure, Kinded};

/// An error answer: its status and text.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// More keys of the answer's object beside `error` (remove's
    /// `unsaved`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    /// A 400 with `message`.
    #[must_use]
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), extra: None }
    }

    /// A 404 with `message`.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into(), extra: None }
    }

    /// A 409 with `message`: the session's state forbids it now.
    #[must_use]
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::CONFLICT, message: message.into(), extra: None }
    }

    /// A 500 with `message`.
    #[must_use]
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into(), extra: None }
    }

    /// A core error: the status of its kind (HTTP's, one to one:
    /// not found 404, invalid input 400, conflict 409, unavailable 503,
    /// failed and internal 500) and the CLI's text (the message, then each
    /// hint after `; `).
    #[must_use]
    pub fn of<E: Kinded>(error: &E) -> ApiError {
        ApiError::from(Failure::of(error))
    }

    /// This error with `key: value` in its answer too.
    #[must_use]
    pub fn with(mut self, key: &str, value: serde_json::Value) -> ApiError {
        self.extra.get_or_insert_with(serde_json::Map::new).insert(key.to_owned(), value);
        self
    }
}

/// The status of a failure of `kind`.
#[must_use]
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal | ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        ApiError { status: status_of(f.kind), message: f.to_string(), extra: None }
    }
}

/// Core errors keep their kind (the status) and their text.
macro_rules! core_errors {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> ApiError {
                ApiError::of(&e)
            }
        }
    )*};
}

core_errors!(
    ClientError,
    tandem_core::store::StoreError,
    tandem_core::session::SessionError,
    tandem_core::ship::ShipError,
    tandem_core::git::GitError,
    tandem_core::ship::land::LandError,
    tandem_core::ship::pull_request::PullError,
    tandem_core::checkpoints::CheckpointError,
    tandem_core::sandbox_git::PrivateGitError,
);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra.unwrap_or_default();
        body.insert("error".to_owned(), serde_json::Value::String(self.message));
        (self.status, Json(serde_json::Value::Object(body))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_core::session::SessionError;

    /// A refusal keeps its kind as the status and reads as the CLI's
    /// line: the message, then the hint after `; `.
    #[test]
    fn core_errors_answer_their_kinds_status_and_the_clis_words() {
        let lose = ApiError::from(SessionError::WouldLoseWork { slug: "s".into(), what: "1 untracked file".into() });
        assert_eq!(lose.status, StatusCode::CONFLICT);
        assert!(lose.message.starts_with("session `s` has 1 untracked file; commit or push them"), "{}", lose.message);
        let missing = ApiError::from(SessionError::NotFound { name: "x".into() });
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.message, "no session named `x` in this repository; `tandem list` shows the sessions");
        assert_eq!(ApiError::from(ClientError::EmptyPrompt).status, StatusCode::BAD_REQUEST);
    }
}
