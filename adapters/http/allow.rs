//! A 405 names the methods the route does take (`Allow`, RFC 9110), read
//! once from the API description so it can't drift from the routes.

use std::collections::BTreeMap;

use poem::http::HeaderValue;

/// Route templates (`/v1/otp/{phone}`) and their methods.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods(Vec<(Vec<String>, HeaderValue)>);

impl AllowedMethods {
    /// From the paths of an OpenAPI document (JSON).
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (template, operations) in paths {
                let methods: Vec<String> = operations
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
                    routes.push((segments(template), allow));
                }
            }
        }
        Self(routes)
    }

    /// The `Allow` value for a path, if a route matches it.
    pub fn for_path(&self, path: &str) -> Option<HeaderValue> {
        let wanted = segments(path);
        self.0
            .iter()
            .find(|(template, _)| {
                template.len() == wanted.len()
                    && template
                        .iter()
                        .zip(&wanted)
                        .all(|(t, w)| t == w || t.starts_with('{'))
            })
            .map(|(_, methods)| methods.clone())
    }

    /// Adds routes served outside the OpenAPI document.
    pub fn with(mut self, extra: BTreeMap<&str, &'static str>) -> Self {
        for (path, methods) in extra {
            self.0.push((segments(path), HeaderValue::from_static(methods)));
        }
        self
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_paths() {
        let spec = r#"{"paths": {"/v1/otp": {"post": {}}, "/v1/otp/{phone}": {"get": {}}, "/v1/otp/verify": {"post": {}}}}"#;
        let routes = AllowedMethods::from_spec(spec);
        let allow = |path| routes.for_path(path).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allow("/v1/otp").as_deref(), Some("POST"));
        assert_eq!(allow("/v1/otp/+14155552671").as_deref(), Some("GET"));
        assert_eq!(allow("/v1/otp/verify").as_deref(), Some("POST"));
        assert_eq!(allow("/v2/otp"), None);
    }
}
