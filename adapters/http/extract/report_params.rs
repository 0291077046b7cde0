//! A delivery report's parameters exactly as the vendor sent them, for a
//! signature over them: from a query string, a form or a flat JSON object
//! (Vonage's account setting picks GET, POST or POST-JSON receipts). Every
//! name and value must be UTF-8 once decoded, and a name may come once: a
//! signature over one copy and a reading of another must not be possible.

use std::collections::BTreeMap;

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::error::{ContentTypeError, ParseRequestPayloadError};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// The parameters, each name once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParams(pub BTreeMap<String, String>);

impl ReportParams {
    /// A query string's or a form body's `name=value` pairs.
    ///
    /// # Errors
    /// Why it isn't one: bytes that don't decode to UTF-8, or a name twice.
    pub fn from_urlencoded(raw: &[u8]) -> Result<Self, String> {
        let mut params = BTreeMap::new();
        for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            insert(&mut params, decode(name)?, decode(value)?)?;
        }
        Ok(Self(params))
    }

    /// A JSON object of strings (numbers are taken as written).
    ///
    /// # Errors
    /// Why it isn't one: not JSON, not an object, a value that is neither a
    /// string nor a number, or a name twice.
    pub fn from_json(raw: &[u8]) -> Result<Self, String> {
        let Pairs(pairs) =
            serde_json::from_slice(raw).map_err(|e| format!("the body is not a JSON object: {e}"))?;
        let mut params = BTreeMap::new();
        for (name, value) in pairs {
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("`{}` is not a string", printable(&name))),
            };
            insert(&mut params, name, value)?;
        }
        Ok(Self(params))
    }
}

fn insert(params: &mut BTreeMap<String, String>, name: String, value: String) -> Result<(), String> {
    if params.contains_key(&name) {
        return Err(format!("`{}` is given more than once", printable(&name)));
    }
    params.insert(name, value);
    Ok(())
}

/// `+` as a space, then percent-decoding, then strict UTF-8.
fn decode(raw: &[u8]) -> Result<String, String> {
    let spaced: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| "a parameter is not UTF-8".to_owned())
}

/// A name for an error text: short, and nothing that could break a line.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// A JSON object's members in order, duplicates kept (a map would keep the
/// last silently).
struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Pairs;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    pairs.push(member);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

fn is(content_type: &str, wanted: &str) -> bool {
    content_type
        .parse::<mime::Mime>()
        .is_ok_and(|m| m.essence_str() == wanted)
}

impl<'a> ApiExtractor<'a> for ReportParams {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        BTreeMap::<String, String>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let schema = BTreeMap::<String, String>::schema_ref;
        Some(MetaRequest {
            description: None,
            content: vec![
                MetaMediaType {
                    content_type: FORM,
                    schema: schema(),
                },
                MetaMediaType {
                    content_type: JSON,
                    schema: schema(),
                },
            ],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let declared = request.content_type().unwrap_or_default();
        let parse = if is(declared, FORM) {
            Self::from_urlencoded
        } else if is(declared, JSON) {
            Self::from_json
        } else {
            return Err(ContentTypeError::NotSupported {
                content_type: declared.to_owned(),
            }
            .into());
        };
        let raw = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        parse(&raw).map_err(|reason| ParseRequestPayloadError { reason }.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn forms_and_queries_decode_strictly() {
        let params =
            ReportParams::from_urlencoded(b"a=1&message-timestamp=2020-01-01+14%3A00%3A00&b=&c&&d=%26%3D")
                .unwrap();
        assert_eq!(
            params.0,
            map(&[
                ("a", "1"),
                ("message-timestamp", "2020-01-01 14:00:00"),
                ("b", ""),
                ("c", ""),
                ("d", "&="),
            ])
        );
        assert_eq!(ReportParams::from_urlencoded(b"").unwrap().0, map(&[]));
        assert!(ReportParams::from_urlencoded(b"a=%FF")
            .unwrap_err()
            .contains("UTF-8"));
        assert!(ReportParams::from_urlencoded(b"a=\xff").is_err());
        assert!(ReportParams::from_urlencoded(b"a=1&a=1")
            .unwrap_err()
            .contains("more than once"));
        // A stray % is kept as it is, as browsers and Vonage's SDKs read it.
        assert_eq!(
            ReportParams::from_urlencoded(b"a=%").unwrap().0,
            map(&[("a", "%")])
        );
    }

    #[test]
    fn json_must_be_a_flat_object_of_strings_each_name_once() {
        let params =
            ReportParams::from_json(br#"{"status": "delivered", "price": 0.0333, "err-code": "0"}"#).unwrap();
        assert_eq!(
            params.0,
            map(&[("status", "delivered"), ("price", "0.0333"), ("err-code", "0")])
        );
        for bad in [
            &br#"["status"]"#[..],
            br#""status""#,
            br#"{"status": {"nested": 1}}"#,
            br#"{"status": null}"#,
            br#"{"status": true}"#,
            br#"{"status": "a", "status": "b"}"#,
            br#"{"status": "a""#,
            b"{\"status\": \"\xff\"}",
        ] {
            assert!(
                ReportParams::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
