//! The committed `openapi.yaml` is what the code generates.

#[test]
fn committed_openapi_yaml_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let generated = otpd::adapters::http::spec().spec_yaml();
    assert!(
        committed == generated,
        "openapi.yaml is stale: regenerate it with `cargo run -- openapi > openapi.yaml`"
    );
}

#[test]
fn the_spec_documents_problems_and_deprecated_routes() {
    let spec: serde_json::Value = serde_json::from_str(&otpd::adapters::http::spec().spec()).unwrap();
    let paths = &spec["paths"];
    for route in ["/generate_otp", "/verify_otp", "/validate_otp"] {
        assert_eq!(paths[route]["post"]["deprecated"], true, "{route}");
    }
    for (route, method) in [
        ("/v1/otp", "post"),
        ("/v1/otp/verify", "post"),
        ("/v1/otp/{phone}", "get"),
    ] {
        let responses = &paths[route][method]["responses"];
        assert!(
            responses["400"]["content"]["application/problem+json"].is_object(),
            "{route}"
        );
        assert!(
            responses["503"]["content"]["application/problem+json"].is_object(),
            "{route}"
        );
    }
    let codes = &spec["components"]["schemas"]["ProblemCode"]["enum"];
    for code in [
        "invalid_phone",
        "invalid_code_format",
        "code_mismatch",
        "not_found",
        "max_attempts_reached",
        "store_unavailable",
    ] {
        assert!(codes.as_array().unwrap().iter().any(|c| c == code), "{code}");
    }
}

/// Strict JSON and YAML parsers refuse a document that repeats a key (two
/// `401`s under one operation's `responses`, say), and lenient ones keep
/// one of the two: the served spec repeats none.
#[test]
fn the_spec_repeats_no_key() {
    use serde::de::{Deserializer, Error, MapAccess, SeqAccess, Visitor};

    /// Any JSON value, refused if an object in it repeats a key.
    struct Strict;
    impl<'de> serde::Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Strict)
        }
    }
    impl<'de> Visitor<'de> for Strict {
        type Value = Strict;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_unit<E>(self) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
            while seq.next_element::<Strict>()?.is_some() {}
            Ok(Strict)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(A::Error::custom(format!("the key {key:?} twice")));
                }
                map.next_value::<Strict>()?;
            }
            Ok(Strict)
        }
    }
    let json = otpd::adapters::http::spec().spec();
    if let Err(e) = serde_json::from_str::<Strict>(&json) {
        panic!("{e}");
    }
}
