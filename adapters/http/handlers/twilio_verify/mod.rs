//! Twilio Verify v2, on the wire: the four operations the official SDKs
//! call for SMS codes (create, check, fetch, update), form-encoded in and
//! snake_case JSON out, signed in with HTTP Basic, answering Twilio's error
//! body. They drive the same use cases as `/v1`. Off (404) until
//! `twilio_verify` is configured.

mod objects;

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::Request;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::idempotent;
use crate::adapters::http::extract::client_ip::ClientIp;
use crate::adapters::http::extract::twilio_auth::{TwilioBasic, TwilioCredentials};
use crate::adapters::http::problem::twilio::TwilioError;
use crate::adapters::http::problem::Problem;
use crate::adapters::http::{ApiTags, Shared};
use crate::domain::{Channel, Code, Locale, Phone, Scope, SendMode, Status, VerificationId};
use crate::service::{Ending, SendOrder, Target};

pub use self::objects::{iso8601, SendCodeAttempt, VerificationCheckObject, VerificationObject};

/// What the Twilio operations serve: who may sign in, which services exist.
#[derive(Debug, Clone)]
pub struct TwilioSurface {
    pub credentials: TwilioCredentials,
    /// Service SIDs served and their friendly names.
    pub services: BTreeMap<String, String>,
    /// `http.public_url`, for each verification's `url`.
    pub public_url: Option<String>,
}

pub struct TwilioVerifyApi;

/// `Channel` and `To` are needed; the rest is accepted and ignored where it
/// doesn't apply, like any field Twilio added later.
#[derive(Object, serde::Deserialize)]
#[oai(rename_all = "PascalCase")]
#[serde(rename_all = "PascalCase")]
pub struct CreateForm {
    /// The phone in E.164.
    to: Option<String>,
    /// `sms`, `whatsapp` or `call`, where otpd has a sender for it (else
    /// 60223); `email`, `sna` and `auto` are not served (400 / 60200).
    channel: Option<String>,
    /// The SMS's language (`es`, `pt-BR`, ...), as on `/v1`; without it,
    /// the destination country's.
    locale: Option<String>,
    /// Accepted; the SMS names the service's configured friendly name as
    /// its `{app}`.
    custom_friendly_name: Option<String>,
    /// Not served: otpd makes every code itself (400 / 60200).
    custom_code: Option<String>,
    /// Accepted; set `sms.android_app_hash` instead.
    app_hash: Option<String>,
}

/// No `Debug`: it holds a code.
#[derive(Object, serde::Deserialize)]
#[oai(rename_all = "PascalCase")]
#[serde(rename_all = "PascalCase")]
pub struct CheckForm {
    /// The code the user typed.
    code: Option<String>,
    /// The phone, for its pending verification.
    to: Option<String>,
    /// Or the verification itself.
    verification_sid: Option<String>,
}

#[derive(Object, serde::Deserialize)]
#[oai(rename_all = "PascalCase")]
#[serde(rename_all = "PascalCase")]
pub struct UpdateForm {
    /// `canceled` or `approved`.
    status: Option<String>,
}

#[derive(ApiResponse)]
pub enum CreatedResponse {
    /// The code was stored and the SMS handed over: a new verification, or
    /// the pending one kept.
    #[oai(status = 201)]
    Created(Json<VerificationObject>),
}

#[derive(ApiResponse)]
pub enum VerificationResponse {
    #[oai(status = 200)]
    Ok(Json<VerificationObject>),
}

#[derive(ApiResponse)]
pub enum CheckResponse {
    /// Right (`approved`) or wrong (`pending`, one attempt used).
    #[oai(status = 200)]
    Ok(Json<VerificationCheckObject>),
}

/// The surface, the sign-in and the service, checked in that order.
fn admit<'a>(
    shared: &'a Shared,
    auth: &TwilioBasic,
    service: &str,
    resource: &str,
) -> Result<&'a TwilioSurface, TwilioError> {
    let surface = shared
        .twilio
        .as_deref()
        .ok_or_else(|| TwilioError::not_found(resource))?;
    if !surface.credentials.admits(&auth.0) {
        return Err(TwilioError::unauthorized());
    }
    if !surface.services.contains_key(service) {
        return Err(TwilioError::not_found(resource));
    }
    Ok(surface)
}

/// A service's verifications are its own, as on Twilio: another service
/// of the account can't see, check or end them.
fn verifications_of(surface: &TwilioSurface, service: &str) -> Scope {
    Scope::of(&format!("twilio:{}:{service}", surface.credentials.account_sid()))
}

fn parse_sid(raw: &str, resource: &str) -> Result<VerificationId, TwilioError> {
    VerificationId::parse(raw).map_err(|_| TwilioError::not_found(resource))
}

#[OpenApi(tag = "ApiTags::TwilioVerify")]
impl TwilioVerifyApi {
    /// Create a verification (Twilio)
    ///
    /// Sends a code by SMS, as Twilio Verify's `Verifications` create; a
    /// pending verification for `To` is kept, as `/v1` keeps it.
    #[oai(
        path = "/v2/Services/:service_sid/Verifications",
        method = "post",
        operation_id = "twilio_create_verification"
    )]
    // Each parameter is one part of the request as poem-openapi reads it.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        auth: TwilioBasic,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        #[oai(validator(max_length = 64))] service_sid: Path<String>,
        /// Not Twilio's: as on `/v1`, a retry with the same key gets the
        /// first answer and sends nothing (409 while it is answered, 422 for
        /// another body). The Twilio SDKs send none.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
        form: Form<CreateForm>,
        req: &Request,
    ) -> Result<CreatedResponse, TwilioError> {
        let resource = format!("/Services/{}/Verifications", service_sid.0);
        let surface = admit(&shared, &auth, &service_sid, &resource)?;
        let to = form.to.as_deref().ok_or_else(|| TwilioError::invalid("To"))?;
        // Twilio's names; `email`, `sna` and `auto` are channels otpd has not.
        let channel = match form.channel.as_deref() {
            Some("sms") => Channel::Sms,
            Some("whatsapp") => Channel::Whatsapp,
            Some("call") => Channel::Voice,
            _ => return Err(TwilioError::invalid("Channel")),
        };
        if form.custom_code.is_some() {
            return Err(TwilioError::invalid("CustomCode"));
        }
        let phone = Phone::parse(to).map_err(|_| TwilioError::invalid("To"))?;
        let locale = form
            .locale
            .as_deref()
            .map(Locale::parse)
            .transpose()
            .map_err(|_| TwilioError::invalid("Locale"))?;
        let app = surface.services.get(&service_sid.0).map_or("", String::as_str);
        let scope = verifications_of(surface, &service_sid);
        let send = async {
            let order = SendOrder {
                phone: &phone,
                client: Some(client.0),
                scope: &scope,
                // Twilio's: one verification per service and phone.
                mode: SendMode::KeepPending,
                locale: locale.as_ref(),
                app: Some(app),
                channel: Some(channel),
                then: Vec::new(),
                fallback: None,
            };
            let sent = shared.service.send(order).await.map_err(Problem::from);
            shared.metrics.answered_send(&sent);
            Ok::<_, TwilioError>(VerificationObject::new(
                surface,
                &service_sid,
                &phone,
                &sent?.verification,
                Status::Pending,
            ))
        };
        // The account's keys: one account signs in to this API.
        let owner = format!("twilio:{}", surface.credentials.account_sid());
        let request = format!(
            "twilio_create\n{}\n{}\n{}\n{}",
            service_sid.0,
            phone.as_str(),
            form.locale.as_deref().unwrap_or_default(),
            channel.as_str()
        );
        let created = idempotent::once(&shared, req, &owner, &request, send);
        Ok(CreatedResponse::Created(Json(created.await?)))
    }

    /// Check a code (Twilio)
    ///
    /// As Twilio Verify's `VerificationCheck`: a right code answers
    /// `approved` and ends the verification; a wrong one `pending`.
    #[oai(
        path = "/v2/Services/:service_sid/VerificationCheck",
        method = "post",
        operation_id = "twilio_check_verification"
    )]
    async fn check(
        &self,
        auth: TwilioBasic,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        #[oai(validator(max_length = 64))] service_sid: Path<String>,
        form: Form<CheckForm>,
    ) -> Result<CheckResponse, TwilioError> {
        let resource = format!("/Services/{}/VerificationCheck", service_sid.0);
        let surface = admit(&shared, &auth, &service_sid, &resource)?;
        let code = form.code.as_deref().ok_or_else(|| TwilioError::invalid("Code"))?;
        let code = Code::parse(code).map_err(|_| TwilioError::invalid("Code"))?;
        let target = match (&form.verification_sid, &form.to) {
            (Some(sid), to) => {
                let id = parse_sid(sid, &resource)?;
                // Both given, they must name the same verification, as on Twilio.
                if let Some(to) = to {
                    let to = Phone::parse(to).map_err(|_| TwilioError::invalid("To"))?;
                    if shared.service.phone_of(&id).as_ref() != Some(&to) {
                        return Err(TwilioError::not_found(&resource));
                    }
                }
                Target::Id(id)
            }
            (None, Some(to)) => Target::Phone(Phone::parse(to).map_err(|_| TwilioError::invalid("To"))?),
            (None, None) => {
                // otpd's own choice: no public source names a code for this.
                return Err(TwilioError::new(
                    StatusCode::BAD_REQUEST,
                    60221,
                    "Either a 'To' or 'VerificationSid' parameter is required",
                    None,
                ));
            }
        };
        let scope = verifications_of(surface, &service_sid);
        let checked = shared.service.check(&scope, &target, &code, client.0).await;
        let not_found = matches!(checked, Err(crate::service::VerifyError::NotFound));
        let checked = checked.map_err(Problem::from);
        shared
            .metrics
            .answered_verification(&checked.as_ref().map(drop).map_err(Clone::clone));
        let guessed = checked.map_err(|p| match not_found {
            true => TwilioError::not_found(&resource),
            false => p.into(),
        })?;
        let v = &guessed.verification;
        Ok(CheckResponse::Ok(Json(VerificationCheckObject {
            sid: v.id.to_string(),
            service_sid: service_sid.0,
            account_sid: surface.credentials.account_sid().to_owned(),
            to: guessed.phone.as_str().to_owned(),
            channel: objects::twilio_channel(v.channels.last().copied().unwrap_or_default()).into(),
            status: guessed.status().name().into(),
            valid: guessed.approved,
            amount: None,
            payee: None,
            date_created: iso8601(v.created_at),
            date_updated: iso8601(v.updated_at()),
            sna_attempts_error_codes: None,
        })))
    }

    /// Fetch a verification (Twilio)
    #[oai(
        path = "/v2/Services/:service_sid/Verifications/:sid",
        method = "get",
        operation_id = "twilio_fetch_verification"
    )]
    async fn fetch(
        &self,
        auth: TwilioBasic,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        #[oai(validator(max_length = 64))] service_sid: Path<String>,
        #[oai(validator(max_length = 64))] sid: Path<String>,
    ) -> Result<VerificationResponse, TwilioError> {
        let resource = format!("/Services/{}/Verifications/{}", service_sid.0, sid.0);
        let surface = admit(&shared, &auth, &service_sid, &resource)?;
        let id = parse_sid(&sid, &resource)?;
        let scope = verifications_of(surface, &service_sid);
        let (phone, v) = shared
            .service
            .fetch(&scope, &id, client.0)
            .await
            .map_err(|e| match e {
                crate::service::StatusError::NotFound => TwilioError::not_found(&resource),
                e => Problem::from(e).into(),
            })?;
        Ok(VerificationResponse::Ok(Json(VerificationObject::new(
            surface,
            &service_sid,
            &phone,
            &v,
            Status::Pending,
        ))))
    }

    /// Update a verification (Twilio)
    ///
    /// `Status=canceled` ends it; `Status=approved` ends it as approved
    /// (the app verified the user another way). Either way it answers 404
    /// from then on.
    #[oai(
        path = "/v2/Services/:service_sid/Verifications/:sid",
        method = "post",
        operation_id = "twilio_update_verification"
    )]
    async fn update(
        &self,
        auth: TwilioBasic,
        shared: Data<&Arc<Shared>>,
        #[oai(validator(max_length = 64))] service_sid: Path<String>,
        #[oai(validator(max_length = 64))] sid: Path<String>,
        form: Form<UpdateForm>,
    ) -> Result<VerificationResponse, TwilioError> {
        let resource = format!("/Services/{}/Verifications/{}", service_sid.0, sid.0);
        let surface = admit(&shared, &auth, &service_sid, &resource)?;
        let ending = match form.status.as_deref() {
            Some("canceled") => Ending::Cancel,
            Some("approved") => Ending::Approve,
            _ => return Err(TwilioError::invalid("Status")),
        };
        let id = parse_sid(&sid, &resource)?;
        let scope = verifications_of(surface, &service_sid);
        let (phone, v) = shared
            .service
            .end(&scope, &id, ending)
            .await
            .map_err(|e| match e {
                crate::service::StatusError::NotFound => TwilioError::not_found(&resource),
                e => Problem::from(e).into(),
            })?;
        Ok(VerificationResponse::Ok(Json(VerificationObject::new(
            surface,
            &service_sid,
            &phone,
            &v,
            ending.status(),
        ))))
    }
}
