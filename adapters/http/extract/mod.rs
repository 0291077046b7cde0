//! What handlers read from a request, checked: the API key, the client's
//! address, strict JSON strings, and the original routes' forms.

pub mod auth;
pub mod client_ip;
pub mod legacy_form;
pub mod raw_json;
pub mod strict_string;
pub mod twilio_auth;
