//! A JSON body kept as it came, for a signature over its exact bytes
//! (Telnyx's webhooks), with the value it reads as.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::error::{ContentTypeError, ParseRequestPayloadError};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;

pub struct RawJson {
    /// The body, exactly; JSON is UTF-8.
    pub raw: String,
    pub value: Value,
}

impl Payload for RawJson {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .parse::<mime::Mime>()
            .is_ok_and(|m| m.type_() == "application" && m.subtype() == "json")
    }

    fn schema_ref() -> MetaSchemaRef {
        Value::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Value::register(registry);
    }
}

impl ParsePayload for RawJson {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let raw = <String as FromRequest>::from_request(req, body).await?;
        let value = serde_json::from_str(&raw).map_err(|e| ParseRequestPayloadError {
            reason: e.to_string(),
        })?;
        Ok(Self { raw, value })
    }
}

impl<'a> ApiExtractor<'a> for RawJson {
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
            Some(declared) if Self::check_content_type(declared) => {
                <Self as ParsePayload>::from_request(request, body).await
            }
            declared => Err(ContentTypeError::NotSupported {
                content_type: declared.unwrap_or_default().to_owned(),
            }
            .into()),
        }
    }
}
