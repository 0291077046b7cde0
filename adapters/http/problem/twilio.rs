//! Twilio's error body, which the `/v2` routes answer instead of a problem:
//! `{"code", "message", "more_info", "status"}`, as the Twilio SDKs read it
//! (no `type` or `title`: with them the SDKs raise another exception class).
//! Each error is a problem first, so its status and meaning are decided in
//! this folder once; this file only names Twilio's codes for them.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use super::{Problem, ProblemCode};

/// A Twilio REST error.
#[derive(Object, Debug, Clone)]
pub struct TwilioErrorBody {
    /// Twilio's error code, e.g. 20404 or 60202.
    pub code: u32,
    pub message: String,
    /// `https://www.twilio.com/docs/errors/<code>`.
    pub more_info: String,
    /// The HTTP status, repeated (twilio-java reads it from here).
    pub status: u16,
}

/// The errors of the Twilio Verify operations, in Twilio's shape.
#[derive(ApiResponse, Debug)]
pub enum TwilioError {
    /// 60200: a missing or invalid parameter, named in the message; 60221:
    /// a check with neither `To` nor `VerificationSid`.
    #[oai(status = 400)]
    BadRequest(Json<TwilioErrorBody>),
    /// 20003: no valid account SID and auth token.
    #[oai(status = 401)]
    Unauthorized(Json<TwilioErrorBody>),
    /// 60605: codes are not sent to this number; 60410: its prefix is
    /// blocked for a while (the pumping breaker).
    #[oai(status = 403)]
    Forbidden(Json<TwilioErrorBody>),
    /// 20404: no such service, or no such pending verification (never
    /// made, approved, cancelled, expired or locked).
    #[oai(status = 404)]
    NotFound(Json<TwilioErrorBody>),
    /// 20409: the first request with this `Idempotency-Key` is still
    /// being answered.
    #[oai(status = 409)]
    Conflict(Json<TwilioErrorBody>),
    /// 60200: the `Idempotency-Key` was used for another request.
    #[oai(status = 422)]
    Unprocessable(Json<TwilioErrorBody>),
    /// 60200: the body is over 16 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<TwilioErrorBody>),
    /// 60200: the body is not form-encoded.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<TwilioErrorBody>),
    /// 60202 max check attempts, 60203 max send attempts, 20429 another
    /// limit; `Retry-After` says when to try again.
    #[oai(status = 429)]
    TooManyRequests(Json<TwilioErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
    /// 20503: the store did not answer, or no SMS could be sent (none was).
    #[oai(status = 503)]
    Unavailable(Json<TwilioErrorBody>),
}

impl TwilioError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let body = Json(TwilioErrorBody {
            code,
            message: message.into(),
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
            status: status.as_u16(),
        });
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest(body),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(body),
            StatusCode::FORBIDDEN => Self::Forbidden(body),
            StatusCode::NOT_FOUND => Self::NotFound(body),
            StatusCode::CONFLICT => Self::Conflict(body),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(body),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(body),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(body),
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(body, retry_after),
            _ => Self::Unavailable(body),
        }
    }

    /// 400 / 60200, naming the parameter.
    pub fn invalid(parameter: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            60200,
            format!("Invalid parameter: {parameter}"),
            None,
        )
    }

    /// 404 / 20404, naming what was asked for as Twilio does (without `/v2`).
    pub fn not_found(resource: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {resource} was not found"),
            None,
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate", None)
    }
}

/// Twilio's status, code and message for a problem.
fn twilio_of(p: &Problem) -> (StatusCode, u32, String) {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    // A missing sign-in is refused before the handler, under the nearest
    // problem code but with its own status.
    let unauthorized = status == StatusCode::UNAUTHORIZED;
    let (status, code, message) = match p.code {
        _ if unauthorized => (status, 20003, "Authenticate".into()),
        ProblemCode::Unauthorized => (StatusCode::UNAUTHORIZED, 20003, "Authenticate".into()),
        ProblemCode::NotFound | ProblemCode::RouteNotFound => (
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found".into(),
        ),
        ProblemCode::MaxAttemptsReached | ProblemCode::GuessBudgetExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            60202,
            "Max check attempts reached".into(),
        ),
        ProblemCode::SendQuotaExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            60203,
            "Max send attempts reached".into(),
        ),
        ProblemCode::ResendTooSoon
        | ProblemCode::IpQuotaExceeded
        | ProblemCode::GlobalQuotaExceeded
        | ProblemCode::CountryQuotaExceeded
        | ProblemCode::SpendCapReached => (StatusCode::TOO_MANY_REQUESTS, 20429, "Too many requests".into()),
        ProblemCode::DestinationNotAllowed => (
            StatusCode::FORBIDDEN,
            60605,
            "Verification delivery attempt blocked".into(),
        ),
        // Fraud Guard's: the prefix is blocked for a while.
        ProblemCode::DestinationBlocked => (
            StatusCode::FORBIDDEN,
            60410,
            "Verification delivery attempt blocked".into(),
        ),
        // Twilio's for a channel the service has not turned on.
        ProblemCode::ChannelUnavailable => {
            (StatusCode::BAD_REQUEST, 60223, "Delivery channel disabled".into())
        }
        ProblemCode::InvalidPhone | ProblemCode::PhoneRejected => {
            (StatusCode::BAD_REQUEST, 60200, "Invalid parameter: To".into())
        }
        ProblemCode::IdempotencyKeyInUse => (
            StatusCode::CONFLICT,
            20409,
            "Conflict: a request with this Idempotency-Key is still being answered".into(),
        ),
        ProblemCode::IdempotencyKeyReused => (
            StatusCode::UNPROCESSABLE_ENTITY,
            60200,
            "Invalid parameter: Idempotency-Key (used for another request)".into(),
        ),
        ProblemCode::InvalidCodeFormat | ProblemCode::CodeMismatch => {
            (StatusCode::BAD_REQUEST, 60200, "Invalid parameter: Code".into())
        }
        ProblemCode::InvalidRequest
        | ProblemCode::UnsupportedMediaType
        | ProblemCode::PayloadTooLarge
        | ProblemCode::RequestTimeout
        | ProblemCode::InvalidSignature => (status, 60200, format!("Invalid parameter: {}", p.detail)),
        ProblemCode::MethodNotAllowed | ProblemCode::MethodNotImplemented => {
            (status, 20004, "Method not allowed".into())
        }
        ProblemCode::SmsDeliveryFailed
        | ProblemCode::StoreUnavailable
        | ProblemCode::StoreFull
        | ProblemCode::NotReady
        | ProblemCode::Internal => (
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Service unavailable".into(),
        ),
    };
    (status, code, message)
}

impl From<Problem> for TwilioError {
    fn from(p: Problem) -> Self {
        let (status, code, message) = twilio_of(&p);
        Self::new(status, code, message, p.retry_after)
    }
}

/// A problem answered on a `/v2` path by what runs before the handlers
/// (no route, a body that is no form, a missing sign-in), in Twilio's shape.
pub fn translate(response: Response) -> Response {
    let Some(problem) = response.data::<Problem>().cloned() else {
        return response;
    };
    let (parts, _) = response.into_parts();
    // Built here, not as a `TwilioError`: these statuses (405, 413, 415, ...)
    // are no handler's, so the enum has no place for them.
    let (status, code, message) = twilio_of(&problem);
    let body = TwilioErrorBody {
        code,
        message,
        more_info: format!("https://www.twilio.com/docs/errors/{code}"),
        status: status.as_u16(),
    };
    let mut translated = Json(body).with_status(status).into_response();
    if let Some(seconds) = problem.retry_after {
        translated.headers_mut().insert("retry-after", seconds.into());
    }
    for (name, value) in &parts.headers {
        if name != "content-type" && name != "content-length" && name != "www-authenticate" {
            translated.headers_mut().insert(name, value.clone());
        }
    }
    translated.extensions_mut().extend(parts.extensions);
    translated
}
