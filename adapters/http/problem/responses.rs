//! The error responses of the operations, as the OpenAPI document lists
//! them: a problem+json body under each status an operation can answer.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};

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
    /// The first request with this `Idempotency-Key` is still being
    /// answered (`idempotency_key_in_use`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// A wrong code, a number that codes are not sent to (or whose range
    /// the pumping breaker has blocked for now), or an `Idempotency-Key`
    /// used for another request.
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
    /// The code store did not answer in time (`store_unavailable`), or the
    /// memory store is full (`store_full`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

/// The original service's answer: `{"status": ..., "message": ...}`.
#[derive(Object, Debug)]
pub struct LegacyMessage {
    /// `success` or `error`.
    pub status: String,
    pub message: String,
}

impl LegacyMessage {
    pub fn new(status: &str, message: impl Into<String>) -> Json<Self> {
        Json(Self {
            status: status.into(),
            message: message.into(),
        })
    }
}

/// The errors of the drop-in routes: as [`ApiError`]'s, less the 404, which
/// those routes answer in the original service's own shape; and a request
/// without a field they need is a 400 in that shape too, as it was, and a
/// wrong code a 401 in it. Each status is listed once in the spec, with
/// both shapes where it has two (strict parsers refuse a repeated key).
#[derive(Debug)]
pub enum LegacyError {
    Problem(Box<LegacyProblem>),
    MissingField(Json<LegacyMessage>),
    WrongCode(Json<LegacyMessage>),
}

impl LegacyError {
    pub fn missing(field: &str) -> Self {
        Self::MissingField(LegacyMessage::new("error", format!("{field} is required.")))
    }
}

impl From<Problem> for LegacyError {
    fn from(p: Problem) -> Self {
        Self::Problem(Box::new(p.into()))
    }
}

impl IntoResponse for LegacyError {
    fn into_response(self) -> Response {
        match self {
            Self::Problem(p) => p.into_response(),
            Self::MissingField(body) => (StatusCode::BAD_REQUEST, body).into_response(),
            Self::WrongCode(body) => (StatusCode::UNAUTHORIZED, body).into_response(),
        }
    }
}

impl From<LegacyError> for poem::Error {
    fn from(e: LegacyError) -> Self {
        poem::Error::from_response(e.into_response())
    }
}

impl ApiResponse for LegacyError {
    fn meta() -> MetaResponses {
        let mut meta = LegacyProblem::meta();
        let in_both_shapes = [
            (
                400,
                "A missing field, in the original service's shape (`application/json`); an invalid \
                 phone or code, as a problem.",
            ),
            (
                401,
                "`/verify_otp`: the code was wrong, in the original service's shape \
                 (`application/json`). Any route: API keys are configured and none valid was \
                 given, as a problem.",
            ),
        ];
        for (status, description) in in_both_shapes {
            for response in meta.responses.iter_mut().filter(|r| r.status == Some(status)) {
                response.description = description;
                response.content.insert(
                    0,
                    MetaMediaType {
                        content_type: <Json<LegacyMessage> as Payload>::CONTENT_TYPE,
                        schema: <Json<LegacyMessage> as Payload>::schema_ref(),
                    },
                );
            }
        }
        meta
    }

    fn register(registry: &mut Registry) {
        LegacyProblem::register(registry);
        LegacyMessage::register(registry);
    }
}

/// The problems of the drop-in routes.
#[derive(ApiResponse, Debug)]
pub enum LegacyProblem {
    /// An invalid phone or code.
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
    /// The code store did not answer in time (`store_unavailable`), or the
    /// memory store is full (`store_full`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        match p.code.status() {
            StatusCode::BAD_REQUEST => Self::BadRequest(Json(p)),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(Json(p)),
            StatusCode::NOT_FOUND => Self::NotFound(Json(p)),
            StatusCode::CONFLICT => Self::Conflict(Json(p)),
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

impl From<Problem> for LegacyProblem {
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
