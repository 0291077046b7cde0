//! The `/v1` API: send a code (starting or continuing a verification),
//! verify it by phone or by verification, read a phone's status.

use std::sync::Arc;

use poem::web::Data;
use poem::Request;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::idempotent;
use super::status::VerificationStatus;
use crate::adapters::http::extract::auth::ApiAuth;
use crate::adapters::http::extract::client_ip::ClientIp;
use crate::adapters::http::extract::strict_string::{CodeText, PhoneText, VerificationIdText};
use crate::adapters::http::problem::{ApiError, Problem, ProblemCode};
use crate::adapters::http::{ApiTags, Shared};
use crate::domain::{
    check_workflow, Channel, Code, DeliveryState, Locale, Phone, SendMode, Status, VerificationId,
};
use crate::service::{SendOrder, Target};

pub struct OtpApi;

#[derive(Object)]
pub struct SendRequest {
    /// The phone in international form, e.g. `+14155552671`; spaces and dashes are fine.
    phone: PhoneText,
    /// The message's language, a tag such as `fr`, `pt-BR` or `zh-Hans`;
    /// without it, the destination country's language, else the default
    /// template. A locale without a template gets the default one.
    #[oai(validator(max_length = 16))]
    locale: Option<String>,
    /// A resend: the new code joins this verification of yours (the id its
    /// first send answered), beside its earlier codes. Without it, every
    /// send starts a verification of its own, so a stranger's send for the
    /// same phone never touches yours.
    verification_id: Option<VerificationIdText>,
    channel: Option<ChannelName>,
    /// A workflow instead of one channel: the first now, each next one
    /// when the vendor reports the last message failed or undelivered, or
    /// no delivered report came within `workflow.fallback_after_secs`
    /// (each a new code; the earlier ones keep working). 1 to 3 channels,
    /// each once; not with `channel`, nor on a resend. Without either, the
    /// configured workflow for the phone's country (`workflow.channels`);
    /// a resend without `channel` goes on the verification's next channel.
    #[oai(validator(min_items = 1, max_items = 3))]
    channels: Option<Vec<ChannelName>>,
}

/// How the code goes: `sms` (the default), `whatsapp` (an authentication
/// message) or `voice` (a call that reads it), where the service has a
/// sender for the channel.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[oai(rename_all = "lowercase")]
pub enum ChannelName {
    #[default]
    Sms,
    Whatsapp,
    Voice,
}

impl From<ChannelName> for Channel {
    fn from(name: ChannelName) -> Self {
        match name {
            ChannelName::Sms => Channel::Sms,
            ChannelName::Whatsapp => Channel::Whatsapp,
            ChannelName::Voice => Channel::Voice,
        }
    }
}

impl From<Channel> for ChannelName {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Sms => ChannelName::Sms,
            Channel::Whatsapp => ChannelName::Whatsapp,
            Channel::Voice => ChannelName::Voice,
        }
    }
}

/// Names the verification by its phone or by its id, not both.
#[derive(Object)]
pub struct VerifyRequest {
    /// The phone the code was sent to, as for sending.
    phone: Option<PhoneText>,
    /// The verification's id, as the send answered it.
    verification_id: Option<VerificationIdText>,
    /// The 6 digits the user typed.
    code: CodeText,
}

#[derive(Object)]
pub struct SendBody {
    status: VerificationStatus,
    /// The verification this code belongs to: new, or the one a resend
    /// named (`VE` and 32 hex digits). Only your API key is ever told it.
    verification_id: String,
    /// SMS sent for this verification, this one included.
    sends: u32,
    /// Wrong codes still allowed for this verification; a resend never
    /// restores them.
    attempts_remaining: u32,
    /// The phone in E.164.
    phone: String,
    /// Seconds until the code expires.
    expires_in: u64,
    /// Seconds until another code may be sent to this phone.
    resend_after: u64,
    channel: ChannelName,
    /// The provider that took the message: `console`, `plivo`, `twilio`,
    /// `meta` (WhatsApp), or `test-number` for a configured test number.
    provider: String,
    /// The provider's id for the message.
    message_id: String,
}

#[derive(Object)]
pub struct VerifyBody {
    status: VerificationStatus,
    /// The verification the code ended.
    verification_id: String,
}

#[derive(Object)]
pub struct StatusBody {
    status: VerificationStatus,
    /// Seconds until the code expires.
    expires_in: u64,
    /// Wrong codes still allowed by phone; 0 means none is heard by phone.
    attempts_remaining: u32,
    // The newest code's (no doc comment on an enum field: see `Delivery`).
    channel: ChannelName,
    /// Who took the message or call, once it was handed over.
    delivery: Option<Delivery>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Delivery {
    /// The provider: `console`, `plivo`, `twilio`, `meta`, or `test-number`.
    provider: String,
    /// The provider's id for the message.
    message_id: String,
    // No doc comment on a field of an enum type: generators such as
    // openapi-python-client refuse the `allOf` poem-openapi makes of one
    // beside a description. The enum's own doc says it.
    state: DeliveryStateName,
    /// The provider's error code, for a message that didn't arrive.
    error_code: Option<String>,
    /// Unix seconds of the last change.
    updated_at: u64,
}

/// The message's fate as the provider last reported it; `queued` until a
/// report arrives (reports need `http.public_url`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryStateName {
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl From<crate::domain::Delivery> for Delivery {
    fn from(d: crate::domain::Delivery) -> Self {
        Self {
            provider: d.provider,
            message_id: d.message_id,
            state: d.state.into(),
            error_code: d.error_code,
            updated_at: d.updated_at,
        }
    }
}

impl From<DeliveryState> for DeliveryStateName {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Queued => Self::Queued,
            DeliveryState::Sent => Self::Sent,
            DeliveryState::Delivered => Self::Delivered,
            DeliveryState::Undelivered => Self::Undelivered,
            DeliveryState::Failed => Self::Failed,
        }
    }
}

#[derive(ApiResponse)]
pub enum SendResponse {
    /// The code was stored and the SMS handed to the provider.
    #[oai(status = 202)]
    Accepted(Json<SendBody>),
}

#[derive(ApiResponse)]
pub enum VerifyResponse {
    /// The code was right; it can't be used again.
    #[oai(status = 200)]
    Approved(Json<VerifyBody>),
}

#[derive(ApiResponse)]
pub enum StatusResponse {
    /// A code is pending for this phone.
    #[oai(status = 200)]
    Pending(Json<StatusBody>),
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Otp")]
impl OtpApi {
    /// Send a code
    ///
    /// Makes a new 6-digit code for the phone and sends it by SMS. A
    /// verification pending for the phone is kept: same id, its attempts
    /// left (a resend never restores them), and its earlier codes still
    /// work until each one's own expiry. Otherwise a new one starts.
    #[oai(path = "/otp", method = "post", operation_id = "send_otp")]
    async fn send(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        /// Makes a retry safe: a retry with the same key within
        /// `http.idempotency_window_secs` gets the first answer and sends
        /// nothing; the same key with another body is 422, and while the
        /// first is still being answered, 409. Keys are the caller's own
        /// (scoped to its API key). 1 to 255 printable ASCII characters.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
        body: Json<SendRequest>,
        req: &Request,
    ) -> Result<SendResponse, ApiError> {
        let phone = Phone::parse(&body.phone.0).map_err(Problem::from)?;
        let locale = body
            .locale
            .as_deref()
            .map(Locale::parse)
            .transpose()
            .map_err(|e| Problem::new(ProblemCode::InvalidRequest, e.to_string()))?;
        let mode = match &body.verification_id {
            Some(id) => SendMode::Resend(VerificationId::parse(&id.0).map_err(Problem::from)?),
            None => SendMode::New,
        };
        let workflow = match (&body.channel, &body.channels) {
            (Some(_), Some(_)) => {
                let detail = "name one channel or a workflow of channels, not both";
                return Err(Problem::new(ProblemCode::InvalidRequest, detail).into());
            }
            (Some(channel), None) => vec![Channel::from(*channel)],
            (None, Some(_)) if matches!(mode, SendMode::Resend(_)) => {
                let detail = "a resend names one channel, or none to go on its verification's workflow";
                return Err(Problem::new(ProblemCode::InvalidRequest, detail).into());
            }
            (None, Some(channels)) => {
                let channels: Vec<Channel> = channels.iter().copied().map(Channel::from).collect();
                check_workflow(&channels)
                    .map_err(|e| Problem::new(ProblemCode::InvalidRequest, e.to_string()))?;
                channels
            }
            // A resend goes where its verification goes next (the store knows).
            (None, None) if matches!(mode, SendMode::Resend(_)) => Vec::new(),
            (None, None) => shared.service.workflow(&phone).to_vec(),
        };
        let (channel, then) = match workflow.split_first() {
            Some((first, rest)) => (Some(*first), rest.to_vec()),
            None => (None, Vec::new()),
        };
        let names: Vec<&str> = workflow.iter().map(|c| c.as_str()).collect();
        let channel_names = names.join(",");
        let request = format!(
            "send_otp\n{}\n{}\n{}\n{channel_names}",
            phone.as_str(),
            body.locale.as_deref().unwrap_or_default(),
            body.verification_id.as_ref().map_or("", |id| id.0.as_str()),
        );
        let owner = idempotency_owner(&auth, client.0);
        let scope = auth.scope();
        let order = SendOrder {
            phone: &phone,
            client: Some(client.0),
            scope: &scope,
            mode,
            locale: locale.as_ref(),
            app: None,
            channel,
            then,
            fallback: None,
        };
        let sent = idempotent::once(&shared, req, &owner, &request, send(&shared, order));
        Ok(SendResponse::Accepted(Json(sent.await?)))
    }

    /// Verify a code
    ///
    /// Checks the code the user typed against the verification named by its
    /// phone or its id: any code sent for it that has not expired. A right
    /// code approves it once and ends it; each wrong one uses an attempt.
    #[oai(path = "/otp/verify", method = "post", operation_id = "verify_otp")]
    async fn verify(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        body: Json<VerifyRequest>,
    ) -> Result<VerifyResponse, ApiError> {
        let target = match (&body.phone, &body.verification_id) {
            (Some(phone), None) => Target::Phone(Phone::parse(&phone.0).map_err(Problem::from)?),
            (None, Some(id)) => Target::Id(VerificationId::parse(&id.0).map_err(Problem::from)?),
            _ => {
                return Err(Problem::new(
                    ProblemCode::InvalidRequest,
                    "give either phone or verification_id",
                )
                .into())
            }
        };
        let code = Code::parse(&body.code.0).map_err(Problem::from)?;
        let checked = shared
            .service
            .check(&auth.scope(), &target, &code, client.0)
            .await;
        let verified = match checked {
            Ok(guessed) if guessed.approved => Ok(guessed.verification.id),
            Ok(guessed) => Err(Problem::from(crate::service::VerifyError::Mismatch {
                attempts_remaining: guessed.verification.attempts_remaining,
            })),
            Err(e) => Err(Problem::from(e)),
        };
        let answered = verified.as_ref().map(drop).map_err(Clone::clone);
        shared.metrics.answered_verification(&answered);
        Ok(VerifyResponse::Approved(Json(VerifyBody {
            status: Status::Approved.into(),
            verification_id: verified?.to_string(),
        })))
    }

    /// Read a pending code's status
    ///
    /// How long the newest verification you started for the phone lives
    /// and how many guesses by phone it has left. Never the code, nor the
    /// verification's id: that is told only to the send that started it.
    #[oai(path = "/otp/:phone", method = "get", operation_id = "otp_status")]
    async fn status(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        /// The phone in E.164, `+` URL-encoded as `%2B` or not.
        #[oai(validator(max_length = 32))]
        phone: Path<String>,
    ) -> Result<StatusResponse, ApiError> {
        let phone = Phone::parse(&phone).map_err(Problem::from)?;
        let status = shared
            .service
            .status(&phone, &auth.scope(), client.0)
            .await
            .map_err(Problem::from)?;
        Ok(StatusResponse::Pending(Json(StatusBody {
            status: Status::Pending.into(),
            expires_in: seconds_left(status.expires_in),
            attempts_remaining: status.attempts_remaining,
            channel: status.channels.last().copied().unwrap_or_default().into(),
            delivery: status.delivery.map(Delivery::from),
        })))
    }
}

/// Whole seconds left, rounded up: a client never gives up too early.
pub fn seconds_left(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Sends a code, as the send operation answers it.
async fn send(shared: &Shared, order: SendOrder<'_>) -> Result<SendBody, ApiError> {
    let phone = order.phone;
    let sent = shared.service.send(order).await.map_err(Problem::from);
    shared.metrics.answered_send(&sent);
    let sent = sent?;
    Ok(SendBody {
        status: Status::Pending.into(),
        verification_id: sent.verification.id.to_string(),
        sends: sent.verification.sends,
        attempts_remaining: sent.verification.attempts_remaining,
        phone: phone.as_str().to_owned(),
        expires_in: sent.expires_in.as_secs(),
        resend_after: sent.resend_after.as_secs(),
        channel: sent.channel.into(),
        provider: sent.receipt.provider,
        message_id: sent.receipt.message_id,
    })
}

/// Whose idempotency keys these are: the caller's API key (as a digest),
/// or, on an open service, its address.
fn idempotency_owner(auth: &ApiAuth, client: std::net::IpAddr) -> String {
    auth.caller().unwrap_or_else(|| format!("anonymous:{client}"))
}
