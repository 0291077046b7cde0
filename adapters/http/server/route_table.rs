//! Every route's facts in one table: the methods it takes (for the `Allow`
//! header of a 405, RFC 9110), whether it needs the API key, and, for the
//! routes served beside the OpenAPI operations, the name logs and metrics
//! give it. The operations' facts are read once from the API description
//! (an operation that declares `security` takes the key), so they can't
//! drift from it; the side routes are listed here, once. (The Twilio Verify
//! operations declare their own scheme, Basic, which their handlers check.)

use poem::http::HeaderValue;

/// A route served beside the operations, answering GET only.
struct Side {
    path: &'static str,
    /// Every path under `path` too.
    under: bool,
    /// The name logs and metrics give it.
    name: &'static str,
    /// Needs the API key when keys are set.
    keyed: bool,
}

/// The security schemes of the API key, as the spec names them
/// (`extract::auth::ApiAuth`).
const API_KEY_SCHEMES: [&str; 2] = ["BearerKey", "HeaderKey"];

pub const METRICS: &str = "/metrics";
pub const SPEC_JSON: &str = "/openapi.json";
pub const SPEC_YAML: &str = "/openapi.yaml";
/// Swagger UI, at this path and with a trailing slash.
pub const DOCS: &str = "/docs";

const SIDE_ROUTES: [Side; 5] = [
    Side {
        path: METRICS,
        under: false,
        name: "metrics",
        keyed: true,
    },
    Side {
        path: SPEC_JSON,
        under: false,
        name: "spec",
        keyed: false,
    },
    Side {
        path: SPEC_YAML,
        under: false,
        name: "spec",
        keyed: false,
    },
    Side {
        path: DOCS,
        under: true,
        name: "docs",
        keyed: false,
    },
    // The development pages check their own conditions (adapters/http/dev).
    Side {
        path: crate::adapters::http::dev::PREFIX,
        under: true,
        name: "dev",
        keyed: false,
    },
];

fn side(path: &str) -> Option<&'static Side> {
    SIDE_ROUTES.iter().find(|s| {
        path == s.path
            || (s.under
                && path
                    .strip_prefix(s.path)
                    .is_some_and(|rest| rest.starts_with('/')))
    })
}

/// The name of a route served beside the operations, or `None` for a path
/// that is the operations' to answer (404 included).
pub fn side_name(path: &str) -> Option<&'static str> {
    side(path).map(|s| s.name)
}

/// The operations' route templates (`/v1/otp/{phone}`) and their facts.
#[derive(Debug, Clone, Default)]
pub struct RouteTable(Vec<Operation>);

#[derive(Debug, Clone)]
struct Operation {
    segments: Vec<String>,
    allow: HeaderValue,
    keyed: bool,
}

impl RouteTable {
    /// From the paths of an OpenAPI document (JSON).
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut routes = Vec::new();
        for (template, operations) in spec["paths"].as_object().into_iter().flatten() {
            let Some(operations) = operations.as_object() else {
                continue;
            };
            let methods: Vec<String> = operations.keys().map(|m| m.to_ascii_uppercase()).collect();
            let keyed = operations.values().any(|op| {
                op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|scheme| API_KEY_SCHEMES.iter().any(|name| scheme.get(name).is_some()))
            });
            if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
                routes.push(Operation {
                    segments: template
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    allow,
                    keyed,
                });
            }
        }
        Self(routes)
    }

    fn operation(&self, path: &str) -> Option<&Operation> {
        self.0.iter().find(|op| {
            let mut wanted = path.split('/').filter(|s| !s.is_empty());
            op.segments
                .iter()
                .all(|t| wanted.next().is_some_and(|w| t == w || t.starts_with('{')))
                && wanted.next().is_none()
        })
    }

    /// The `Allow` value for a path, if a route matches it.
    pub fn allow(&self, path: &str) -> Option<HeaderValue> {
        match side(path) {
            Some(_) => Some(HeaderValue::from_static("GET")),
            None => self.operation(path).map(|op| op.allow.clone()),
        }
    }

    /// Whether a call to `path` needs the API key (when keys are set). A
    /// path no route serves does, so it answers 401 before it says 404.
    pub fn needs_key(&self, path: &str) -> bool {
        match side(path) {
            Some(s) => s.keyed,
            None => self.operation(path).is_none_or(|op| op.keyed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::from_spec(
            r#"{"paths": {
                "/v1/otp": {"post": {"security": [{"BearerKey": []}]}},
                "/v1/otp/{phone}": {"get": {"security": [{"BearerKey": []}]}},
                "/v1/otp/verify": {"post": {"security": [{"BearerKey": []}]}},
                "/v1/webhooks/plivo": {"post": {}},
                "/v2/Services/{service_sid}/Verifications": {"post": {"security": [{"TwilioBasic": []}]}},
                "/healthz": {"get": {}}
            }}"#,
        )
    }

    #[test]
    fn templates_match_their_paths() {
        let routes = table();
        let allow = |path| routes.allow(path).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allow("/v1/otp").as_deref(), Some("POST"));
        assert_eq!(allow("/v1/otp/+14155552671").as_deref(), Some("GET"));
        assert_eq!(allow("/v1/otp/verify").as_deref(), Some("POST"));
        assert_eq!(allow("/docs/index.css").as_deref(), Some("GET"));
        assert_eq!(allow("/v2/otp"), None);
        assert_eq!(allow("/v1/otp/a/b"), None);
    }

    #[test]
    fn operations_with_security_and_metrics_need_the_key() {
        let routes = table();
        for path in [
            "/v1/otp",
            "/v1/otp/verify",
            "/v1/otp/+14155552671",
            "/metrics",
            "/",
            "/docsx",
            "/nope",
        ] {
            assert!(routes.needs_key(path), "{path}");
        }
        for path in [
            "/healthz",
            "/v1/webhooks/plivo",
            "/v2/Services/VA1/Verifications",
            "/docs",
            "/docs/",
            "/openapi.json",
            "/dev/inbox",
        ] {
            assert!(!routes.needs_key(path), "{path}");
        }
    }

    #[test]
    fn side_routes_have_names() {
        assert_eq!(side_name("/metrics"), Some("metrics"));
        assert_eq!(side_name("/openapi.yaml"), Some("spec"));
        assert_eq!(side_name("/docs"), Some("docs"));
        assert_eq!(side_name("/docs/index.css"), Some("docs"));
        assert_eq!(side_name("/dev/inbox"), Some("dev"));
        for path in ["/v1/otp", "/docsx", "/devx", "/generate_otp", "/", "/nope"] {
            assert_eq!(side_name(path), None, "{path}");
        }
    }
}
