//! What handlers read from a request, checked: the API key, the client's
//! address, strict JSON strings, and the original routes' forms.

pub mod auth;
pub mod client_ip;
pub mod legacy_form;
pub mod raw_json;
pub mod report_params;
pub mod strict_string;
pub mod twilio_auth;

use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest};

/// The request body a hand-made payload extractor declares in the spec:
/// its one content type, schema and whether it is required, as
/// poem-openapi's own payloads declare theirs.
fn body_meta<P: Payload + ParsePayload>() -> Option<MetaRequest> {
    Some(MetaRequest {
        description: None,
        content: vec![MetaMediaType {
            content_type: P::CONTENT_TYPE,
            schema: P::schema_ref(),
        }],
        required: P::IS_REQUIRED,
    })
}
