//! A 405 names the methods the route does take (`Allow`, RFC 9110), read
//! once from the API description so it can't drift from the routes.

use std::collections::BTreeMap;

use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// Route templates (`/v1/otp/{phone}`) and their methods.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods(Vec<(Vec<String>, String)>);

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
                routes.push((segments(template), methods.join(", ")));
            }
        }
        Self(routes)
    }

    /// The `Allow` value for a path, if a route matches it.
    fn for_path(&self, path: &str) -> Option<&str> {
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
            .map(|(_, methods)| methods.as_str())
    }

    /// Adds routes served outside the OpenAPI document.
    pub fn with(mut self, extra: BTreeMap<&str, &str>) -> Self {
        for (path, methods) in extra {
            self.0.push((segments(path), methods.to_owned()));
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

pub struct Allow(pub std::sync::Arc<AllowedMethods>);

impl<E: Endpoint> Middleware<E> for Allow {
    type Output = AllowEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AllowEndpoint {
            inner,
            routes: std::sync::Arc::clone(&self.0),
        }
    }
}

pub struct AllowEndpoint<E> {
    inner: E,
    routes: std::sync::Arc<AllowedMethods>,
}

impl<E: Endpoint> Endpoint for AllowEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let path = req.uri().path().to_owned();
        let mut response = self.inner.call(req).await?.into_response();
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            if let Some(value) = self
                .routes
                .for_path(&path)
                .and_then(|m| HeaderValue::from_str(m).ok())
            {
                response.headers_mut().insert("allow", value);
            }
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_paths() {
        let spec = r#"{"paths": {"/v1/otp": {"post": {}}, "/v1/otp/{phone}": {"get": {}}, "/v1/otp/verify": {"post": {}}}}"#;
        let routes = AllowedMethods::from_spec(spec);
        assert_eq!(routes.for_path("/v1/otp"), Some("POST"));
        assert_eq!(routes.for_path("/v1/otp/+14155552671"), Some("GET"));
        assert_eq!(routes.for_path("/v1/otp/verify"), Some("POST"));
        assert_eq!(routes.for_path("/v2/otp"), None);
    }
}
