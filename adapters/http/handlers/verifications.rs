//! `/v1/verifications/{id}`: read or cancel a pending verification by the
//! id its send answered.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::otp::{seconds_left, ChannelName, Delivery};
use super::status::VerificationStatus;
use crate::adapters::http::extract::auth::ApiAuth;
use crate::adapters::http::extract::client_ip::ClientIp;
use crate::adapters::http::problem::{ApiError, Problem, ProblemCode};
use crate::adapters::http::{ApiTags, Shared};
use crate::domain::{Phone, Status, Verification, VerificationId};
use crate::service::Ending;

pub struct VerificationApi;

#[derive(Object)]
pub struct VerificationBody {
    /// `VE` and 32 hex digits.
    id: String,
    status: VerificationStatus,
    /// The phone in E.164.
    phone: String,
    /// Seconds until its newest code expires, and with it the verification.
    expires_in: u64,
    /// Wrong codes still allowed; resends never restore them.
    attempts_remaining: u32,
    /// Codes sent for it, on any channel.
    sends: u32,
    /// Unix seconds of its first send.
    created_at: u64,
    // Its newest code's (no doc comment on an enum field: see `Delivery`).
    channel: ChannelName,
    /// Its last 10 sends, oldest first: when, and on which channel.
    attempts: Vec<SendAttempt>,
    /// Its workflow's channels not tried yet, in order: where it falls
    /// back next.
    next_channels: Vec<ChannelName>,
    /// Who took its newest message or call and what became of it.
    delivery: Option<Delivery>,
}

/// One send of a code.
#[derive(Object)]
pub struct SendAttempt {
    /// Unix seconds.
    sent_at: u64,
    channel: ChannelName,
}

impl VerificationBody {
    fn new(phone: &Phone, v: Verification, status: Status) -> Self {
        Self {
            id: v.id.to_string(),
            status: status.into(),
            phone: phone.as_str().to_owned(),
            expires_in: seconds_left(v.expires_in),
            attempts_remaining: v.attempts_remaining,
            sends: v.sends,
            created_at: v.created_at,
            channel: v.channels.last().copied().unwrap_or_default().into(),
            attempts: v
                .send_times
                .iter()
                .zip(&v.channels)
                .map(|(at, channel)| SendAttempt {
                    sent_at: *at,
                    channel: (*channel).into(),
                })
                .collect(),
            next_channels: v.next.iter().map(|c| (*c).into()).collect(),
            delivery: v.delivery.map(Delivery::from),
        }
    }
}

#[derive(ApiResponse)]
pub enum VerificationResponse {
    /// The verification.
    #[oai(status = 200)]
    Found(Json<VerificationBody>),
}

/// A malformed id names nothing: 404, and the store is not asked.
fn not_found(_: crate::domain::VerificationIdError) -> Problem {
    Problem::new(ProblemCode::NotFound, "no such verification")
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Otp")]
impl VerificationApi {
    /// Read a verification
    ///
    /// A pending verification by its id: its phone, life, attempts left,
    /// sends and delivery. Approved, cancelled, expired and locked ones
    /// answer 404, and so does another API key's. Each read takes one from
    /// the client's `limits.lookups_per_ip`.
    #[oai(
        path = "/verifications/:id",
        method = "get",
        operation_id = "get_verification"
    )]
    async fn fetch(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        client: ClientIp,
        /// The verification's id, as the send answered it.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> Result<VerificationResponse, ApiError> {
        let id = VerificationId::parse(&id).map_err(not_found)?;
        let (phone, v) = shared
            .service
            .fetch(&auth.scope(), &id, client.0)
            .await
            .map_err(Problem::from)?;
        Ok(VerificationResponse::Found(Json(VerificationBody::new(
            &phone,
            v,
            Status::Pending,
        ))))
    }

    /// Cancel a verification
    ///
    /// Ends a pending verification: none of its codes works any more, and
    /// it answers 404 from now on. Answers it as it was, `canceled`.
    #[oai(
        path = "/verifications/:id",
        method = "delete",
        operation_id = "cancel_verification"
    )]
    async fn cancel(
        &self,
        auth: ApiAuth,
        shared: Data<&Arc<Shared>>,
        /// The verification's id, as the send answered it.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> Result<VerificationResponse, ApiError> {
        let id = VerificationId::parse(&id).map_err(not_found)?;
        let (phone, v) = shared
            .service
            .end(&auth.scope(), &id, Ending::Cancel)
            .await
            .map_err(Problem::from)?;
        Ok(VerificationResponse::Found(Json(VerificationBody::new(
            &phone,
            v,
            Status::Canceled,
        ))))
    }
}
