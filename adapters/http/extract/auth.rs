//! API keys: when configured, every API call needs one, as `Authorization:
//! Bearer <key>` or `X-API-Key: <key>`. Keys are held and compared as
//! SHA-256 digests, in constant time. Docs, specs, health checks and the
//! vendors' signed webhooks stay open; `/metrics` on this listener takes a
//! key too (or lives on `metrics.listen`).

use std::future::{ready, Future};
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::TryFutureExt;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::SecurityScheme;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::adapters::http::problem::{Problem, ProblemCode};
use crate::adapters::http::server::route_table::RouteTable;
use crate::config::Secret;
use crate::domain::Scope;

#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Vec<[u8; 32]>);

/// Keys whose `sha256:` digests are refused: what an example or a hurried
/// operator uses.
const WEAK_KEYS: &[&str] = &[
    "", "test", "testing", "password", "secret", "changeme", "admin", "key", "apikey", "api_key", "api-key",
    "example", "123456", "12345678", "otpd",
];

impl ApiKeys {
    /// Each entry a raw key or `sha256:<64 hex digits>` of one.
    ///
    /// # Errors
    /// Why an entry is unusable, naming its position.
    pub fn parse(entries: &[Secret]) -> Result<Self, String> {
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let digest: [u8; 32] = match entry.expose().strip_prefix("sha256:") {
                    Some(hex_digest) => hex::decode(hex_digest)
                        .ok()
                        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                        .ok_or_else(|| format!("entry {i}: sha256: must be followed by 64 hex digits"))?,
                    None if entry.expose().len() < 16 => {
                        return Err(format!("entry {i}: a key must be at least 16 characters"))
                    }
                    None => Sha256::digest(entry.expose().as_bytes()).into(),
                };
                // A digest says nothing of its key's length: at least refuse
                // the words anyone would try first (an example's `test`).
                let weak = WEAK_KEYS
                    .iter()
                    .any(|word| <[u8; 32]>::from(Sha256::digest(word.as_bytes())) == digest);
                match weak {
                    true => Err(format!(
                        "entry {i}: is the digest of a well-known word; make a key of 32 random bytes"
                    )),
                    false => Ok(digest),
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares against every key, whatever matches, so timing says nothing.
    fn admits(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0
            .iter()
            .fold(Choice::from(0), |found, key| found | key.ct_eq(&digest))
            .into()
    }
}

fn presented_key(req: &Request) -> Option<&str> {
    if let Some(value) = req.header("authorization") {
        let (scheme, key) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim());
    }
    req.header("x-api-key").map(str::trim)
}

/// Checks the key on every route the route table says needs one.
pub struct RequireApiKey {
    pub keys: Arc<ApiKeys>,
    pub routes: Arc<RouteTable>,
}

impl<E: Endpoint> Middleware<E> for RequireApiKey {
    type Output = RequireApiKeyEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequireApiKeyEndpoint {
            inner,
            keys: Arc::clone(&self.keys),
            routes: Arc::clone(&self.routes),
        }
    }
}

pub struct RequireApiKeyEndpoint<E> {
    inner: E,
    keys: Arc<ApiKeys>,
    routes: Arc<RouteTable>,
}

impl<E: Endpoint> Endpoint for RequireApiKeyEndpoint<E> {
    type Output = Response;

    // Not an async fn: a layer that only decides whether a request goes on
    // adds just that choice to the request's future, not another copy of
    // the request (docs/performance.md).
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        if self.keys.is_empty()
            || !self.routes.needs_key(req.uri().path())
            || presented_key(&req).is_some_and(|k| self.keys.admits(k))
        {
            return Either::Left(self.inner.call(req).map_ok(IntoResponse::into_response));
        }
        let mut response =
            Problem::new(ProblemCode::Unauthorized, "a valid API key is required").into_response();
        response
            .headers_mut()
            .insert("www-authenticate", poem::http::HeaderValue::from_static("Bearer"));
        Either::Right(ready(Ok(response)))
    }
}

/// An API key in `Authorization: Bearer <key>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct BearerKey(pub Bearer);

/// An API key in `X-API-Key: <key>`.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "X-API-Key", key_in = "header")]
pub struct HeaderKey(pub ApiKey);

/// Declares, for the spec and Swagger UI's Authorize button, that operations
/// take an API key. [`RequireApiKey`] enforces it; when no keys are
/// configured the service is open, hence the fallback.
#[derive(SecurityScheme)]
pub enum ApiAuth {
    Bearer(BearerKey),
    Header(HeaderKey),
    #[oai(fallback)]
    Open,
}

impl ApiAuth {
    /// The caller, as a digest of its key; `None` on an open service.
    pub fn caller(&self) -> Option<String> {
        let key = match self {
            Self::Bearer(BearerKey(bearer)) => &bearer.token,
            Self::Header(HeaderKey(header)) => &header.key,
            Self::Open => return None,
        };
        Some(format!("key:{}", hex::encode(Sha256::digest(key.as_bytes()))))
    }

    /// The scope of the verifications it starts: its key's, or on an open
    /// service everyone's one.
    pub fn scope(&self) -> Scope {
        Scope::of(self.caller().as_deref().unwrap_or("open"))
    }

    /// The scope of the verifications the original routes start: apart
    /// from the caller's `/v1` ones, since a send there replaces every
    /// pending verification of its scope, and a `/v1` verification checked
    /// by id must not end by another route's send.
    pub fn legacy_scope(&self) -> Scope {
        Scope::of(&format!("legacy:{}", self.caller().as_deref().unwrap_or("open")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_and_digests_are_both_accepted() {
        let digest = hex::encode(Sha256::digest(b"second-key-0123456789"));
        let keys = ApiKeys::parse(&[
            Secret::new("first-key-0123456789"),
            Secret::new(format!("sha256:{digest}")),
        ])
        .unwrap();
        assert!(keys.admits("first-key-0123456789"));
        assert!(keys.admits("second-key-0123456789"));
        assert!(!keys.admits("first-key-012345678"));
        assert!(!keys.admits(""));
        assert!(ApiKeys::parse(&[Secret::new("sha256:abc")]).is_err());
        assert!(ApiKeys::parse(&[Secret::new("short")]).is_err());
    }

    #[test]
    fn digests_of_well_known_words_are_refused() {
        // sha256 of `test`, as an example once shipped it.
        let test = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for weak in [
            test.to_owned(),
            format!("sha256:{}", hex::encode(Sha256::digest(b"password"))),
        ] {
            let refused = ApiKeys::parse(&[Secret::new(weak)]).unwrap_err();
            assert!(refused.contains("well-known"), "{refused}");
        }
        // The example's placeholder is no digest at all.
        assert!(ApiKeys::parse(&[Secret::new(
            "sha256:<SHA-256 of a key of 32 random bytes, in hex>"
        )])
        .is_err());
    }
}
