//! The SMS text: an operator's template with `{code}`, `{minutes}` and `{app}`.

use std::fmt;
use std::time::Duration;

use super::Code;

/// A template split once into its parts, so rendering is a plain join and a
/// value can never be read as a placeholder.
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    parts: Vec<Part>,
    app: String,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Code,
    Minutes,
    App,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template must contain {{code}}")]
    MissingCode,
    #[error("the template has an unknown placeholder {{{0}}}; known: {{code}}, {{minutes}}, {{app}}")]
    UnknownPlaceholder(String),
    #[error("the template has a {{ without a closing }}")]
    Unclosed,
}

impl MessageTemplate {
    pub const DEFAULT: &'static str =
        "Your {app} verification code is {code}. It expires in {minutes} minutes.";

    /// # Errors
    /// A [`TemplateError`] for a template without `{code}` or with a
    /// placeholder it doesn't know.
    pub fn parse(template: &str, app: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or(TemplateError::Unclosed)? + open;
            parts.push(match &rest[open + 1..close] {
                "code" => Part::Code,
                "minutes" => Part::Minutes,
                "app" => Part::App,
                other => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if !parts.iter().any(|p| matches!(p, Part::Code)) {
            return Err(TemplateError::MissingCode);
        }
        Ok(Self {
            parts,
            app: app.to_owned(),
        })
    }

    /// The text for one code; `{minutes}` is the TTL rounded up, so the
    /// message never promises less time than the code has.
    pub fn render(&self, code: &Code, ttl: Duration) -> SmsText {
        let minutes = ttl.as_secs().div_ceil(60).max(1).to_string();
        let mut text = String::new();
        for part in &self.parts {
            text.push_str(match part {
                Part::Text(s) => s,
                Part::Code => code.expose(),
                Part::Minutes => &minutes,
                Part::App => &self.app,
            });
        }
        SmsText(text)
    }
}

/// A rendered message. It holds a code, so `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsText(String);

impl SmsText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmsText(<{} characters, redacted>)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let template = MessageTemplate::parse(MessageTemplate::DEFAULT, "Acme").unwrap();
        let text = template.render(&Code::parse("042917").unwrap(), Duration::from_secs(180));
        assert_eq!(
            text.as_str(),
            "Your Acme verification code is 042917. It expires in 3 minutes."
        );
        assert!(!format!("{text:?}").contains("042917"));
    }

    #[test]
    fn values_are_not_read_as_placeholders() {
        let template = MessageTemplate::parse("{app}: {code}", "{code}").unwrap();
        let text = template.render(&Code::parse("111111").unwrap(), Duration::from_secs(90));
        assert_eq!(text.as_str(), "{code}: 111111");
    }

    #[test]
    fn refuses_broken_templates() {
        assert_eq!(
            MessageTemplate::parse("no code", "a").unwrap_err(),
            TemplateError::MissingCode
        );
        assert_eq!(
            MessageTemplate::parse("{code} {name}", "a").unwrap_err(),
            TemplateError::UnknownPlaceholder("name".into())
        );
        assert_eq!(
            MessageTemplate::parse("{code", "a").unwrap_err(),
            TemplateError::Unclosed
        );
    }
}
