//! One error type for every handler: 4xx carry a message a person can act on,
//! internal errors are logged and answered with a plain 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{1}")]
    Client(StatusCode, String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T, E = AppError> = Result<T, E>;

impl AppError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        AppError::Client(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::Client(StatusCode::NOT_FOUND, msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        AppError::Client(StatusCode::CONFLICT, msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        AppError::Client(StatusCode::UNAUTHORIZED, msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Client(StatusCode::FORBIDDEN, msg.into())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_unique_violation(&e) {
            return AppError::conflict("that already exists");
        }
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Client(status, msg) => {
                (status, Json(json!({ "error": msg }))).into_response()
            }
            AppError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({ "error": "something went wrong on our side; try again, and tell the administrator if it persists" })),
                )
                    .into_response()
            }
        }
    }
}
