//! The original service's routes, kept for its old clients: form fields in,
//! its JSON shapes out, with every rule of the `/v1` API behind them.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::adapters::http::extract::auth::ApiAuth;
use crate::adapters::http::extract::client_ip::ClientIp;
use crate::adapters::http::extract::legacy_form::LegacyForm;
use crate::adapters::http::problem::{LegacyError, LegacyMessage, Problem, ProblemCode};
use crate::adapters::http::{ApiTags, Shared};
use crate::domain::{Channel, Code, Phone, PhoneError, SendMode};
use crate::service::{SendOrder, StatusError, Target, VerifyError};

pub struct DropInApi;

#[derive(Object, Deserialize)]
pub struct PhoneForm {
    /// The phone's digits with the country code, `+` optional: `14155552671`.
    /// Required: without it the answer is a 400 in the original's shape.
    #[oai(validator(max_length = 32))]
    phone_number: Option<String>,
}

#[derive(Object, Deserialize)]
pub struct VerifyForm {
    /// As for `/generate_otp`.
    #[oai(validator(max_length = 32))]
    phone_number: Option<String>,
    /// The 6 digits the user typed. Required, as `phone_number` is.
    #[oai(validator(pattern = r"^[0-9]{6}$"))]
    otp: Option<String>,
}

#[derive(Object)]
pub struct Generated {
    /// Always `success`.
    status: String,
    /// The SMS provider's id for the message.
    message_uuid: String,
}

#[derive(ApiResponse)]
pub enum GenerateResponse {
    /// The code was stored and sent.
    #[oai(status = 200)]
    Sent(Json<Generated>),
}

#[derive(ApiResponse)]
pub enum VerifyOtpResponse {
    /// The code was right and is now used up.
    #[oai(status = 200)]
    Verified(Json<LegacyMessage>),
    /// No pending code for this phone.
    #[oai(status = 404)]
    NotFound(Json<LegacyMessage>),
}

#[derive(ApiResponse)]
pub enum ValidateOtpResponse {
    /// A code is pending for this phone.
    #[oai(status = 200)]
    Valid(Json<LegacyMessage>),
    /// No pending code for this phone.
    #[oai(status = 404)]
    NotFound(Json<LegacyMessage>),
}

fn message(status: &str, message: &str) -> Json<LegacyMessage> {
    LegacyMessage::new(status, message)
}

/// A field the original required.
fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, LegacyError> {
    value.as_deref().ok_or_else(|| LegacyError::missing(name))
}

/// The original took digits without `+`; a `+` is accepted too.
fn parse_phone(raw: &str) -> Result<Phone, PhoneError> {
    let raw = raw.trim();
    let international = if raw.starts_with('+') {
        raw.to_owned()
    } else {
        format!("+{raw}")
    };
    Phone::parse(&international)
}

#[OpenApi(tag = "ApiTags::DropIn")]
impl DropInApi {
    /// Send a code (original route)
    #[oai(
        path = "/generate_otp",
        method = "post",
        deprecated,
        operation_id = "legacy_generate_otp"
    )]
    async fn generate(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        form: LegacyForm<PhoneForm>,
    ) -> Result<GenerateResponse, LegacyError> {
        let phone = parse_phone(required(&form.phone_number, "phone_number")?).map_err(Problem::from)?;
        let order = SendOrder {
            phone: &phone,
            client: Some(client.0),
            scope: &auth.legacy_scope(),
            // Each send replaces the pending code and its attempts, as the
            // original routes always did.
            mode: SendMode::Replace,
            locale: None,
            app: None,
            channel: Some(Channel::Sms),
            then: Vec::new(),
            fallback: None,
        };
        let sent = shared.service.send(order).await.map_err(Problem::from);
        shared.metrics.answered_send(&sent);
        let sent = sent?;
        Ok(GenerateResponse::Sent(Json(Generated {
            status: "success".into(),
            message_uuid: sent.receipt.message_id,
        })))
    }

    /// Verify a code (original route)
    #[oai(
        path = "/verify_otp",
        method = "post",
        deprecated,
        operation_id = "legacy_verify_otp"
    )]
    async fn verify(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        form: LegacyForm<VerifyForm>,
    ) -> Result<VerifyOtpResponse, LegacyError> {
        let phone = parse_phone(required(&form.phone_number, "phone_number")?);
        let otp = required(&form.otp, "otp")?;
        let phone = phone.map_err(Problem::from)?;
        let code = Code::parse(otp.trim()).map_err(Problem::from)?;
        let checked = shared
            .service
            .check(&auth.legacy_scope(), &Target::Phone(phone), &code, client.0)
            .await;
        let verified = match checked {
            Ok(guessed) if guessed.approved => Ok(()),
            Ok(guessed) => Err(Problem::from(VerifyError::Mismatch {
                attempts_remaining: guessed.verification.attempts_remaining,
            })),
            Err(e) => Err(Problem::from(e)),
        };
        shared.metrics.answered_verification(&verified);
        match verified {
            Ok(()) => Ok(VerifyOtpResponse::Verified(message("success", "OTP verified."))),
            Err(p) if p.code == ProblemCode::NotFound => {
                Ok(VerifyOtpResponse::NotFound(message("error", "OTP not found.")))
            }
            Err(p) if p.code == ProblemCode::CodeMismatch => Err(LegacyError::WrongCode(message(
                "error",
                "OTP verification failed.",
            ))),
            Err(p) => Err(p.into()),
        }
    }

    /// Check that a code is pending (original route)
    #[oai(
        path = "/validate_otp",
        method = "post",
        deprecated,
        operation_id = "legacy_validate_otp"
    )]
    async fn validate(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        form: LegacyForm<PhoneForm>,
    ) -> Result<ValidateOtpResponse, LegacyError> {
        let phone = parse_phone(required(&form.phone_number, "phone_number")?).map_err(Problem::from)?;
        match shared
            .service
            .status(&phone, &auth.legacy_scope(), client.0)
            .await
        {
            Ok(_) => Ok(ValidateOtpResponse::Valid(message("success", "OTP valid."))),
            Err(StatusError::NotFound) => {
                Ok(ValidateOtpResponse::NotFound(message("error", "OTP not found.")))
            }
            Err(e) => Err(Problem::from(e).into()),
        }
    }
}
