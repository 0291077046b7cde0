//! The words of a call, fetched by the vendor that places it once the call
//! is answered (Plivo's `answer_url`). The URL's last segment is the words
//! sealed (`adapters/sms/sealed_speech`); the request must be signed by the
//! vendor's account as its reports are. A forged, altered or expired URL, or
//! an unsigned request, gets a problem that says nothing of the words.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use poem::http::HeaderMap;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Form, Json, PlainText};
use poem_openapi::{ApiResponse, OpenApi};

use crate::adapters::http::problem::{Problem, ProblemCode};
use crate::adapters::http::{ApiTags, Shared};
use crate::adapters::sms::plivo::voice::{answer_xml, ANSWER_PATH};
use crate::adapters::sms::plivo::Plivo;
use crate::adapters::sms::Vendor;

pub struct VoiceAnswerApi;

#[derive(ApiResponse)]
pub enum AnswerResponse {
    /// Plivo XML: one `<Speak>` with the words in their language. Never
    /// cached: it holds the code.
    #[oai(status = 200, content_type = "text/xml")]
    Speak(PlainText<String>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse, Debug)]
pub enum AnswerError {
    /// The request is not signed by the account that places the calls, or
    /// calls don't go through this vendor here.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// The token is not one otpd sealed, was altered, or has expired.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The body is over 16 KiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not form-encoded, as Plivo posts it.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
}

fn forbidden(detail: &str) -> AnswerError {
    AnswerError::Forbidden(Json(Problem::new(ProblemCode::InvalidSignature, detail)))
}

#[OpenApi(prefix_path = "/v1/voice", tag = "ApiTags::Webhooks")]
impl VoiceAnswerApi {
    /// Plivo call instructions
    ///
    /// What Plivo fetches from a call's `answer_url` (by POST, as otpd asks
    /// it to) once the call is answered, signed with `X-Plivo-Signature-V3`.
    /// `token` is the call's words, sealed by otpd and opening only until
    /// the code expires. Needs no API key: the signature and the token are
    /// its authentication.
    #[oai(path = "/plivo/:token", method = "post", operation_id = "plivo_call_answer")]
    async fn plivo_answer(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// The call's words, sealed.
        token: Path<String>,
        /// `CallUUID`, `CallStatus` and whatever else Plivo sends.
        form: Form<BTreeMap<String, String>>,
    ) -> Result<AnswerResponse, AnswerError> {
        let not_here = || forbidden("calls through Plivo are not configured here");
        let seal = shared.answer_seal.as_ref().ok_or_else(not_here)?;
        let keys = &shared.webhook_keys;
        let (Some(base), Some(key)) = (&keys.public_url, keys.tokens.get(Plivo::NAME)) else {
            return Err(not_here());
        };
        let url = format!("{base}{ANSWER_PATH}/{}", token.0);
        let params: Vec<(String, String)> = form.0.into_iter().collect();
        if !Plivo::report_signed(key, &url, &params, headers) {
            return Err(forbidden("the Plivo signature is missing or wrong"));
        }
        // One answer for every reason, so a prober learns nothing.
        let speech = seal.open(&token.0, SystemTime::now()).map_err(|_| {
            AnswerError::NotFound(Json(Problem::new(
                ProblemCode::NotFound,
                "no call's words are here, or no longer",
            )))
        })?;
        Ok(AnswerResponse::Speak(
            PlainText(answer_xml(&speech)),
            "no-store".to_owned(),
        ))
    }
}
