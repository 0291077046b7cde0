//! The error responses of the operations, as the OpenAPI document lists
//! them: a problem+json body under each status an operation can answer.

use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::ApiResponse;

use super::Problem;

/// The errors of the `/v1` operations.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// Malformed request: bad JSON, a missing field, an invalid phone or code.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// API keys are configured and none valid was given.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// No pending code for this phone (never sent, expired or used).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// A wrong code, or a number that codes are not sent to.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// A limit was reached; `Retry-After` says when to try again.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] Option<u64>),
    /// The body is over 16 KiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON (`/v1`) or form-encoded (the original routes).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The SMS provider sent nothing; the new code was withdrawn.
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
    /// The code store did not answer in time.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

/// The errors of the drop-in routes: as [`ApiError`], less the 404, which
/// those routes answer in the original service's own shape.
#[derive(ApiResponse, Debug)]
pub enum LegacyError {
    /// Malformed request: a missing field, an invalid phone or code.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// API keys are configured and none valid was given.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// A number that codes are not sent to.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// A limit was reached; `Retry-After` says when to try again.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] Option<u64>),
    /// The body is over 16 KiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON (`/v1`) or form-encoded (the original routes).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The SMS provider sent nothing; the new code was withdrawn.
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
    /// The code store did not answer in time.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        match p.code.status() {
            StatusCode::BAD_REQUEST => Self::BadRequest(Json(p)),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(Json(p)),
            StatusCode::NOT_FOUND => Self::NotFound(Json(p)),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(Json(p)),
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = p.retry_after;
                Self::TooManyRequests(Json(p), retry_after)
            }
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(Json(p)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(Json(p)),
            StatusCode::BAD_GATEWAY => Self::BadGateway(Json(p)),
            _ => Self::Unavailable(Json(p)),
        }
    }
}

impl From<Problem> for LegacyError {
    fn from(p: Problem) -> Self {
        match p.code.status() {
            StatusCode::BAD_REQUEST => Self::BadRequest(Json(p)),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(Json(p)),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(Json(p)),
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = p.retry_after;
                Self::TooManyRequests(Json(p), retry_after)
            }
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(Json(p)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(Json(p)),
            StatusCode::BAD_GATEWAY => Self::BadGateway(Json(p)),
            _ => Self::Unavailable(Json(p)),
        }
    }
}
