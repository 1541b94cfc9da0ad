//! What a request gets back when it cannot be answered: a status and one JSON object naming
//! the field at fault, never a bare text body or a dropped connection.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: String,
    /// The request part at fault: a query parameter, a path segment, a body field, or
    /// `body` for the body as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// 400: the client sent something this endpoint cannot take.
    pub fn bad(field: &str, error: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            field: Some(field.to_string()),
            error: error.into(),
        }
    }

    pub fn not_found(field: &str, error: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            field: Some(field.to_string()),
            error: error.into(),
        }
    }

    pub fn too_large(error: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            field: Some("body".into()),
            error: error.into(),
        }
    }

    /// 500: the server failed (a store file gone bad, the encoder failing), not the request.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            field: None,
            error: error.to_string(),
        }
    }

    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: None,
            error: error.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}
