//! Sends under an `Idempotency-Key` (the IETF httpapi draft, as Stripe uses
//! it), for any operation whose answer can be kept as JSON: claim the key,
//! then send and keep the answer, or give back the first answer, or refuse.

use std::future::Future;

use poem::Request;
use poem_openapi::types::{ParseFromJSON, ToJSON};

use crate::adapters::http::problem::{Problem, ProblemCode};
use crate::adapters::http::Shared;
use crate::domain::{Claim, Idempotency, IdempotencyKey};

/// Runs `send` once per key: without a key, just runs it. `scope` names the
/// caller whose keys these are; `request` what it asked, so the same key
/// with another request is refused.
///
/// # Errors
/// What `send` returns, or a problem: 400 for a malformed key, 409 while
/// the first request is answered, 422 for a key used for another request.
pub async fn once<T, E, F>(
    shared: &Shared,
    req: &Request,
    scope: &str,
    request: &str,
    send: F,
) -> Result<T, E>
where
    T: ToJSON + ParseFromJSON,
    E: From<Problem>,
    F: Future<Output = Result<T, E>>,
{
    // Read from the request, not from the operation's parameter, which
    // takes a value that isn't visible ASCII for no header at all: such a
    // key is refused, never silently ignored.
    let Some(raw) = req.headers().get("idempotency-key") else {
        return send.await;
    };
    let invalid = |detail: String| Problem::new(ProblemCode::InvalidRequest, detail);
    let raw = raw
        .to_str()
        .map_err(|_| invalid("Idempotency-Key must be printable ASCII".into()))?;
    let key = IdempotencyKey::parse(raw).map_err(|e| invalid(e.to_string()))?;
    let idempotency = Idempotency::new(scope, &key, request);
    match shared.service.claim(&idempotency).await.map_err(Problem::from)? {
        Claim::Fresh => {}
        Claim::Answered(answer) => {
            return T::parse_from_json_string(&answer)
                .map_err(|_| Problem::new(ProblemCode::Internal, "a kept answer could not be read").into());
        }
        Claim::InFlight => {
            return Err(Problem::new(
                ProblemCode::IdempotencyKeyInUse,
                "a request with this Idempotency-Key is still being answered; retry later",
            )
            .into())
        }
        Claim::Reused => {
            return Err(Problem::new(
                ProblemCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for a request with another body",
            )
            .into())
        }
    }
    let sent = send.await;
    match &sent {
        Ok(answer) => {
            shared
                .service
                .settle(&idempotency, &answer.to_json_string())
                .await
        }
        Err(_) => shared.service.release(&idempotency).await,
    }
    sent
}
