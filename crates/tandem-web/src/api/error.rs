//! Errors as the API answers them: a status and `{"error": "…"}` with
//! the same words the CLI prints.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tandem_core::client::ClientError;

/// An error answer: its status and text.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    /// A 400 with `message`.
    #[must_use]
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> ApiError {
        let status = match &e {
            ClientError::Session(
                tandem_core::session::SessionError::Lookup(_) | tandem_core::session::SessionError::NotFound { .. },
            ) => StatusCode::NOT_FOUND,
            ClientError::EmptyPrompt | ClientError::Session(_) => StatusCode::BAD_REQUEST,
            // A refusal (unsaved work, not waiting, …): the request was
            // understood but the session's state does not allow it.
            _ => StatusCode::CONFLICT,
        };
        ApiError { status, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}
