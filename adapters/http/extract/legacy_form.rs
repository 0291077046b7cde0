//! The drop-in routes' body: a form, as the original service read it. It
//! took a request with no body at all as a form with no fields (and said
//! which field was missing), so this does too; a body declared as anything
//! but a form is still a 415.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::error::{ContentTypeError, ParseRequestPayloadError};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;

pub struct LegacyForm<T>(pub T);

/// Whether a browser says a page of another site sent the request. A form
/// post is a request a page may make anywhere without asking (no CORS
/// preflight), so on an open instance any site could otherwise have its
/// visitors' browsers send codes. The original service's clients are
/// servers, which send neither header.
fn cross_site(req: &Request) -> bool {
    if req.header("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match (req.header("origin"), req.header("host")) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        _ => false,
    }
}

impl<T> std::ops::Deref for LegacyForm<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for LegacyForm<T> {
    const CONTENT_TYPE: &'static str = "application/x-www-form-urlencoded";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .parse::<mime::Mime>()
            .is_ok_and(|m| m.type_() == "application" && m.subtype() == "x-www-form-urlencoded")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for LegacyForm<T> {
    const IS_REQUIRED: bool = false;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        if cross_site(req) {
            return Err(ParseRequestPayloadError {
                reason: "a form posted from another site's page is refused".into(),
            }
            .into());
        }
        let data = <Vec<u8> as FromRequest>::from_request(req, body).await?;
        serde_urlencoded::from_bytes(&data).map(Self).map_err(|e| {
            ParseRequestPayloadError {
                reason: e.to_string(),
            }
            .into()
        })
    }
}

impl<'a, T: Type + DeserializeOwned> ApiExtractor<'a> for LegacyForm<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        super::body_meta::<Self>()
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(declared) if !Self::check_content_type(declared) => Err(ContentTypeError::NotSupported {
                content_type: declared.to_owned(),
            }
            .into()),
            _ => <Self as ParsePayload>::from_request(request, body).await,
        }
    }
}
