//! A generic HTTP vendor, for any SMS API by configuration alone: method,
//! URL, headers, authentication (basic, bearer, or a named header), a JSON
//! or form body template, where its answer holds the message id, and which
//! of its error codes mean the number is refused; a route's DLT ids go
//! where the templates name `{dlt_entity_id}` and `{dlt_template_id}`. It
//! takes no delivery reports: their signatures differ too much to configure.

mod template;

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::Value;

use self::template::{JsonTemplate, Template, Values};
use super::dlt::Dlt;
use super::retry::AttemptError;
use super::vendor::{required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, HttpAuth, HttpBodyFormat, HttpVendorConfig, Secret};
use crate::domain::{DeliveryState, Phone, SmsText};

#[derive(Debug)]
pub struct HttpVendor {
    method: Method,
    url: Template,
    headers: Vec<(String, Template)>,
    auth: Auth,
    body: Body,
    from: String,
    id_pointer: String,
    error_pointer: String,
    rejected_codes: Vec<String>,
    dlt: Option<Dlt>,
}

#[derive(Debug)]
enum Auth {
    None,
    Basic(String, Secret),
    Bearer(Secret),
    Header(String, Secret),
}

#[derive(Debug)]
enum Body {
    None,
    Json(JsonTemplate),
    Form(Vec<(String, Template)>),
}

/// The parts of the settings, parsed; the errors name the setting.
fn parse(config: &HttpVendorConfig) -> Result<HttpVendor, ConfigError> {
    let method = Method::from_bytes(config.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ConfigError::new("sms.http.method", "must be an HTTP method such as POST"))?;
    if !config.url.starts_with("https://") && !config.url.starts_with("http://") {
        return Err(ConfigError::new(
            "sms.http.url",
            "must start with https:// or http://",
        ));
    }
    let url = Template::parse(&config.url).map_err(|e| ConfigError::new("sms.http.url", e))?;
    let headers = config
        .headers
        .iter()
        .map(|(name, value)| {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConfigError::new(format!("sms.http.headers.{name}"), "is not a header name"))?;
            Template::parse(value)
                .map(|t| (name.clone(), t))
                .map_err(|e| ConfigError::new(format!("sms.http.headers.{name}"), e))
        })
        .collect::<Result<_, _>>()?;
    let body_error = |e: String| ConfigError::new("sms.http.body", e);
    let body = match config.body_format {
        HttpBodyFormat::None => Body::None,
        HttpBodyFormat::Json => {
            let doc: Value =
                serde_json::from_str(&config.body).map_err(|e| body_error(format!("is not JSON: {e}")))?;
            Body::Json(JsonTemplate::parse(&doc).map_err(body_error)?)
        }
        HttpBodyFormat::Form => Body::Form(
            config
                .body
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair
                        .split_once('=')
                        .ok_or_else(|| body_error(format!("`{pair}` is not name=value")))?;
                    Ok((name.to_owned(), Template::parse(value).map_err(body_error)?))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let auth = match config.auth {
        HttpAuth::None => Auth::None,
        HttpAuth::Basic => Auth::Basic(config.username.clone(), config.password.clone()),
        HttpAuth::Bearer => Auth::Bearer(config.token.clone()),
        HttpAuth::Header => Auth::Header(config.auth_header.clone(), config.token.clone()),
    };
    Ok(HttpVendor {
        method,
        url,
        headers,
        auth,
        body,
        from: config.from.clone(),
        id_pointer: config.id_pointer.clone(),
        error_pointer: config.error_pointer.clone(),
        rejected_codes: config.rejected_codes.clone(),
        dlt: None,
    })
}

impl HttpVendor {
    fn names(&self, what: &str) -> bool {
        self.setting_naming(what).is_some()
    }

    /// The first setting whose template names `what` (see [`Template::names`]).
    fn setting_naming(&self, what: &str) -> Option<&'static str> {
        if self.url.names(what) {
            return Some("sms.http.url");
        }
        if self.headers.iter().any(|(_, t)| t.names(what)) {
            return Some("sms.http.headers");
        }
        let in_body = match &self.body {
            Body::None => false,
            Body::Json(t) => t.names(what),
            Body::Form(fields) => fields.iter().any(|(_, t)| t.names(what)),
        };
        in_body.then_some("sms.http.body")
    }
}

/// A JSON value a pointer finds, as text: ids and codes come as either.
fn text_at(reply: &Value, pointer: &str) -> Option<String> {
    match reply.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn url_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Vendor for HttpVendor {
    const NAME: &'static str = "http";
    const TITLE: &'static str = "the generic HTTP vendor";
    const ID_FIELD: &'static str = "message id (sms.http.id_pointer)";
    // Never read: this vendor takes no reports.
    const REPORT: ReportFields = ReportFields {
        message_id: "",
        status: "",
        error_code: "",
    };

    type Settings = HttpVendorConfig;
    type Reply = Value;

    fn check(config: &HttpVendorConfig) -> Result<(), ConfigError> {
        required("sms.http.url", &config.url)?;
        let vendor = parse(config)?;
        if !vendor.names("to") {
            return Err(ConfigError::new(
                "sms.http.body",
                "must name the number: {to} or {to_digits}",
            ));
        }
        if !vendor.names("text") {
            return Err(ConfigError::new("sms.http.body", "must name the message: {text}"));
        }
        // A message has lines (the autofill ones), which no header value may
        // hold: every send would fail.
        if vendor.headers.iter().any(|(_, t)| t.names("text")) {
            return Err(ConfigError::new(
                "sms.http.headers",
                "can't hold {text}: a message has several lines; put it in sms.http.body",
            ));
        }
        if vendor.url.names("text") {
            tracing::warn!(
                "sms.http.url holds {{text}}: every code will be in the URL, and so in the access logs of \
                 every proxy between otpd and the vendor; put it in sms.http.body"
            );
        }
        if !config.id_pointer.starts_with('/') {
            return Err(ConfigError::new(
                "sms.http.id_pointer",
                "must be a JSON pointer such as /messages/0/id",
            ));
        }
        if !config.error_pointer.is_empty() && !config.error_pointer.starts_with('/') {
            return Err(ConfigError::new(
                "sms.http.error_pointer",
                "must be a JSON pointer such as /error/code",
            ));
        }
        match config.auth {
            HttpAuth::None => Ok(()),
            HttpAuth::Basic => {
                required("sms.http.username", &config.username)?;
                required("sms.http.password", config.password.expose())
            }
            HttpAuth::Bearer => required("sms.http.token", config.token.expose()),
            HttpAuth::Header => {
                required("sms.http.auth_header", &config.auth_header)?;
                required("sms.http.token", config.token.expose())
            }
        }
    }

    fn new(config: &HttpVendorConfig) -> Self {
        // Start-up has checked; unchecked settings (tests) send nothing useful.
        parse(config).unwrap_or_else(|_| HttpVendor {
            method: Method::POST,
            url: Template::parse("").unwrap_or_else(|_| unreachable!("an empty template parses")),
            headers: Vec::new(),
            auth: Auth::None,
            body: Body::None,
            from: String::new(),
            id_pointer: String::new(),
            error_pointer: String::new(),
            rejected_codes: Vec::new(),
            dlt: None,
        })
    }

    fn set_sender(config: &mut HttpVendorConfig, sender: &str) {
        config.from = sender.to_owned();
    }

    /// The ids go where the templates name them; none there, none sent.
    fn set_dlt(&mut self, dlt: &Dlt) -> bool {
        self.dlt = Some(dlt.clone());
        self.names("dlt")
    }

    fn wants_dlt(config: &HttpVendorConfig) -> Option<&'static str> {
        parse(config).ok()?.setting_naming("dlt")
    }

    fn report_key(_: &HttpVendorConfig) -> Option<(&'static str, ReportKey)> {
        None
    }

    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        local_id: &str,
        _callback: Option<&str>,
    ) -> RequestBuilder {
        let values = Values {
            to: to.as_str(),
            text: text.as_str(),
            id: local_id,
            from: &self.from,
            dlt_entity_id: self.dlt.as_ref().map_or("", Dlt::entity_id),
            dlt_template_id: self.dlt.as_ref().map_or("", Dlt::template_id),
        };
        let mut request = http.request(self.method.clone(), self.url.render(&values, url_encoded));
        for (name, value) in &self.headers {
            request = request.header(name, value.render(&values, str::to_owned));
        }
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic(user, password) => request.basic_auth(user, Some(password.expose())),
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Header(name, value) => request.header(name, value.expose()),
        };
        match &self.body {
            Body::None => request,
            Body::Json(body) => request.json(&body.render(&values)),
            Body::Form(fields) => {
                let form: Vec<(&str, String)> = fields
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.render(&values, str::to_owned)))
                    .collect();
                request.form(&form)
            }
        }
    }

    fn message_id(&self, reply: &Value) -> Option<String> {
        text_at(reply, &self.id_pointer)
    }

    fn refusal(&self, status: StatusCode, reply: Value) -> AttemptError {
        let code = (!self.error_pointer.is_empty())
            .then(|| text_at(&reply, &self.error_pointer))
            .flatten();
        match code {
            Some(code) if self.rejected_codes.contains(&code) => AttemptError::Rejected {
                message: format!("the vendor refused the number (HTTP {})", status.as_u16()),
                vendor_code: code,
            },
            Some(code) => status_error(status, &format!("vendor code {code}")),
            None => status_error(status, "no vendor code"),
        }
    }

    fn delivery_state(_: &str) -> Option<DeliveryState> {
        None
    }

    fn report_signed(_: &ReportKey, _: &str, _: &[(String, String)], _: &HeaderMap) -> bool {
        false
    }
}
