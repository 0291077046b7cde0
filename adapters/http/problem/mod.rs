//! Every error the service answers is RFC 9457 `application/problem+json` with
//! a stable `code`. This file is the one place where errors become statuses.

mod errors;
mod responses;
pub mod twilio;

use std::time::Duration;

use poem::http::StatusCode;
use poem::Response;
use poem_openapi::types::ToJSON;
use poem_openapi::{Enum, Object};

pub use self::responses::{ApiError, LegacyError, LegacyMessage};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The stable, machine-readable name of a problem. Clients branch on this.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ProblemCode {
    Unauthorized,
    InvalidRequest,
    InvalidPhone,
    InvalidCodeFormat,
    UnsupportedMediaType,
    RouteNotFound,
    InvalidSignature,
    MethodNotAllowed,
    MethodNotImplemented,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    CodeMismatch,
    PhoneRejected,
    DestinationNotAllowed,
    DestinationBlocked,
    ChannelUnavailable,
    MaxAttemptsReached,
    GuessBudgetExceeded,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    ResendTooSoon,
    SendQuotaExceeded,
    IpQuotaExceeded,
    GlobalQuotaExceeded,
    CountryQuotaExceeded,
    SpendCapReached,
    SmsDeliveryFailed,
    StoreUnavailable,
    StoreFull,
    NotReady,
    Internal,
}

impl ProblemCode {
    /// The code as clients see it, e.g. `code_mismatch`.
    pub fn name(self) -> String {
        self.to_json()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Whether this is an abuse limit turning a request away.
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            Self::ResendTooSoon
                | Self::SendQuotaExceeded
                | Self::IpQuotaExceeded
                | Self::GlobalQuotaExceeded
                | Self::CountryQuotaExceeded
                | Self::SpendCapReached
                | Self::MaxAttemptsReached
                | Self::GuessBudgetExceeded
                | Self::DestinationNotAllowed
                | Self::DestinationBlocked
        )
    }
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest | Self::InvalidPhone | Self::InvalidCodeFormat => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RouteNotFound | Self::NotFound => StatusCode::NOT_FOUND,
            Self::InvalidSignature => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MethodNotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::CodeMismatch
            | Self::PhoneRejected
            | Self::DestinationNotAllowed
            | Self::DestinationBlocked
            | Self::ChannelUnavailable
            | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyKeyInUse => StatusCode::CONFLICT,
            Self::MaxAttemptsReached
            | Self::GuessBudgetExceeded
            | Self::ResendTooSoon
            | Self::SendQuotaExceeded
            | Self::IpQuotaExceeded
            | Self::GlobalQuotaExceeded
            | Self::CountryQuotaExceeded
            | Self::SpendCapReached => StatusCode::TOO_MANY_REQUESTS,
            Self::SmsDeliveryFailed => StatusCode::BAD_GATEWAY,
            Self::StoreUnavailable | Self::StoreFull | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Unauthorized => "A valid API key is required",
            Self::InvalidRequest => "The request is malformed",
            Self::InvalidPhone => "The phone number is not valid",
            Self::InvalidCodeFormat => "The code is not 6 digits",
            Self::UnsupportedMediaType => "The body's content type is not accepted here",
            Self::RouteNotFound => "No such route",
            Self::InvalidSignature => "The request's signature is missing or wrong",
            Self::MethodNotAllowed => "The route does not take this method",
            Self::MethodNotImplemented => "No route takes this method",
            Self::NotFound => "No pending code",
            Self::PayloadTooLarge => "The request body is too large",
            Self::RequestTimeout => "The request body took too long to arrive",
            Self::CodeMismatch => "The code is wrong",
            Self::PhoneRejected => "The SMS provider rejected the number",
            Self::DestinationNotAllowed => "Codes are not sent to this number",
            Self::DestinationBlocked => "Codes to this number's range are blocked for now",
            Self::ChannelUnavailable => "This service sends no codes on this channel",
            Self::MaxAttemptsReached => "No attempts left for this code",
            Self::GuessBudgetExceeded => "This phone has had too many wrong codes for now",
            Self::IdempotencyKeyInUse => "A request with this Idempotency-Key is still being answered",
            Self::IdempotencyKeyReused => "This Idempotency-Key was used for another request",
            Self::ResendTooSoon => "A code was sent to this phone moments ago",
            Self::SendQuotaExceeded => "This phone has had all its codes for now",
            Self::IpQuotaExceeded => "This client has made too many requests",
            Self::GlobalQuotaExceeded => "The service has sent all its codes for now",
            Self::CountryQuotaExceeded => "This client has reached its destination countries for today",
            Self::SpendCapReached => "The service has reached a spending cap for now",
            Self::SmsDeliveryFailed => "The SMS could not be sent",
            Self::StoreUnavailable => "The code store is unavailable",
            Self::StoreFull => "The code store is full",
            Self::NotReady => "The service is not ready",
            Self::Internal => "Internal error",
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:otpd:problem:<code>`.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    // Described by ProblemCode's own doc: see Delivery's `state`.
    pub code: ProblemCode,
    /// Wrong codes still allowed before the code locks (`code_mismatch`).
    pub attempts_remaining: Option<u32>,
    /// Seconds to wait before trying again (429 answers).
    pub retry_after: Option<u64>,
    /// The SMS provider's own error code (`phone_rejected`).
    pub vendor_code: Option<String>,
    /// The SMS provider's own error message (`phone_rejected`).
    pub vendor_message: Option<String>,
    /// The pumping breaker's decision (`destination_blocked`).
    pub block: Option<BlockRecord>,
}

/// Why the pumping breaker blocked a destination group: its window's
/// figures and when the block ends.
#[derive(Object, Debug, Clone)]
pub struct BlockRecord {
    /// The group: a country (`NG`) or a prefix (`+2348031234`).
    pub group: String,
    /// `country` or `prefix`.
    pub level: String,
    /// The window whose figures tripped it: `hour` or `day`.
    pub window: String,
    /// Codes sent to the group in the window.
    pub sent: u32,
    /// Codes approved in the window.
    pub approved: u32,
    /// The most unverified codes (sent less approved) the window allowed.
    pub threshold: u32,
    /// Blocks of this group in a row, each within a week of the last; each doubles the length.
    pub strikes: u32,
    /// When the block ends (RFC 3339, UTC).
    pub until: String,
}

impl Problem {
    /// A 429 that says, in the body and in `Retry-After`, when to try again;
    /// whole seconds, rounded up so a client never comes back too early.
    pub fn retry_later(code: ProblemCode, detail: impl Into<String>, wait: Duration) -> Self {
        let mut p = Problem::new(code, detail);
        p.retry_after = Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
        p
    }

    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:otpd:problem:{}", code.name()),
            title: code.title().into(),
            status: code.status().as_u16(),
            detail: detail.into(),
            code,
            attempts_remaining: None,
            retry_after: None,
            vendor_code: None,
            vendor_message: None,
            block: None,
        }
    }

    /// A plain response, for errors raised outside the OpenAPI handlers.
    /// It carries the problem itself too, so a surface with an error shape
    /// of its own (Twilio's) builds that from it, not from the body.
    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.to_json_string();
        let mut response = Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body);
        response.set_data(self);
        response
    }
}

/// Turns any error that escaped the handlers (bad JSON, unknown route, body
/// too large, ...) into a problem; a response that is already one passes.
pub async fn catch_all(err: poem::Error) -> Response {
    let operation = err.data::<poem_openapi::OperationId>().copied();
    let mut response = problem_of(err);
    if let Some(operation) = operation {
        // Keeps the route's name for the request log and metrics.
        response.set_data(operation);
    }
    response
}

fn problem_of(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::NOT_FOUND => ProblemCode::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ProblemCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ProblemCode::PayloadTooLarge,
        StatusCode::REQUEST_TIMEOUT => ProblemCode::RequestTimeout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemCode::UnsupportedMediaType,
        s if s.is_client_error() => ProblemCode::InvalidRequest,
        _ => {
            tracing::error!(error = %err, "unhandled error");
            return Problem::new(ProblemCode::Internal, "internal error").into_response();
        }
    };
    let mut problem = Problem::new(code, err.to_string());
    // Keep the status poem chose (e.g. 411), under the nearest stable code.
    problem.status = status.as_u16();
    problem.into_response()
}
