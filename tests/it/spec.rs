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
