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
    autofill: Autofill,
}

/// Lines that let phones fill the code in by themselves.
#[derive(Debug, Clone, Default)]
pub struct Autofill {
    /// Android SMS Retriever: the app's 11-character hash on its own line.
    pub android_app_hash: Option<String>,
    /// WebOTP (origin-bound one-time codes): a last line `@<domain> #<code>`.
    pub webotp_domain: Option<String>,
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
    #[error("the Android app hash must be 11 characters of A-Z, a-z, 0-9, + and /")]
    AppHash,
    #[error("the WebOTP domain must be a host name such as example.com")]
    WebOtpDomain,
    #[error("the message is {length} {unit} long, over one SMS segment of {limit}")]
    TooLong {
        length: usize,
        limit: usize,
        unit: &'static str,
    },
}

impl MessageTemplate {
    pub const DEFAULT: &'static str =
        "Your {app} verification code is {code}. It expires in {minutes} minutes.";

    /// # Errors
    /// A [`TemplateError`] for a template without `{code}` or with a
    /// placeholder it doesn't know.
    pub fn parse(template: &str, app: &str, autofill: Autofill) -> Result<Self, TemplateError> {
        if autofill.android_app_hash.as_deref().is_some_and(|h| {
            h.len() != 11
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        }) {
            return Err(TemplateError::AppHash);
        }
        if autofill.webotp_domain.as_deref().is_some_and(|d| {
            d.is_empty()
                || d.starts_with(['.', '-'])
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }) {
            return Err(TemplateError::WebOtpDomain);
        }
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
            autofill,
        })
    }

    /// The same template naming another app (a Twilio Verify service's
    /// friendly name).
    pub fn for_app(&self, app: &str) -> Self {
        Self {
            app: app.to_owned(),
            ..self.clone()
        }
    }

    /// Refuses a template whose message would not fit one SMS segment: 160
    /// GSM-7 characters, or 70 UCS-2 ones as soon as any character is outside
    /// GSM-7. Every code has six ASCII digits, so any code measures the same.
    ///
    /// # Errors
    /// [`TemplateError::TooLong`] with the length reached.
    pub fn check_single_segment(&self, ttl: Duration) -> Result<(), TemplateError> {
        let text = self.render(&Code::generate(), ttl);
        let (length, limit, unit) = match gsm7_septets(text.as_str()) {
            Some(septets) => (septets, 160, "GSM-7 characters"),
            None => (text.as_str().encode_utf16().count(), 70, "UCS-2 characters"),
        };
        if length > limit {
            return Err(TemplateError::TooLong { length, limit, unit });
        }
        Ok(())
    }

    /// The text for one code; `{minutes}` is the TTL rounded up, so the
    /// message never promises less time than the code has.
    pub fn render(&self, code: &Code, ttl: Duration) -> SmsText {
        let mut text = self.render_body(code, ttl);
        let Autofill {
            android_app_hash,
            webotp_domain,
        } = &self.autofill;
        if android_app_hash.is_some() || webotp_domain.is_some() {
            text.push('\n');
        }
        if let Some(hash) = android_app_hash {
            text.push('\n');
            text.push_str(hash);
        }
        // The WebOTP line must be the very last one.
        if let Some(domain) = webotp_domain {
            text.push_str(&format!("\n@{domain} #{}", code.expose()));
        }
        SmsText(text)
    }

    fn render_body(&self, code: &Code, ttl: Duration) -> String {
        let minutes = minutes_shown(ttl).to_string();
        let mut text = String::new();
        for part in &self.parts {
            text.push_str(match part {
                Part::Text(s) => s,
                Part::Code => code.expose(),
                Part::Minutes => &minutes,
                Part::App => &self.app,
            });
        }
        text
    }
}

/// The `{minutes}` a message shows for a code that lives `ttl`: rounded up,
/// so it never promises less time than the code has.
pub fn minutes_shown(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60).max(1)
}

/// A rendered message. It holds a code, so `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsText(String);

/// GSM 03.38: the basic set costs one septet, the extension set two.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// The text's length in GSM-7 septets, or `None` if it needs UCS-2.
fn gsm7_septets(text: &str) -> Option<usize> {
    text.chars().try_fold(0, |n, c| {
        if GSM7_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

impl SmsText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text is all GSM-7; if not, it goes as UCS-2 (some vendors
    /// must be told so).
    pub fn is_gsm7(&self) -> bool {
        gsm7_septets(&self.0).is_some()
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
        let template = MessageTemplate::parse(MessageTemplate::DEFAULT, "Acme", Autofill::default()).unwrap();
        let text = template.render(&Code::parse("042917").unwrap(), Duration::from_secs(180));
        assert_eq!(
            text.as_str(),
            "Your Acme verification code is 042917. It expires in 3 minutes."
        );
        assert!(!format!("{text:?}").contains("042917"));
    }

    #[test]
    fn values_are_not_read_as_placeholders() {
        let template = MessageTemplate::parse("{app}: {code}", "{code}", Autofill::default()).unwrap();
        let text = template.render(&Code::parse("111111").unwrap(), Duration::from_secs(90));
        assert_eq!(text.as_str(), "{code}: 111111");
    }

    #[test]
    fn refuses_broken_templates() {
        let parse = |t| MessageTemplate::parse(t, "a", Autofill::default()).unwrap_err();
        assert_eq!(parse("no code"), TemplateError::MissingCode);
        assert_eq!(
            parse("{code} {name}"),
            TemplateError::UnknownPlaceholder("name".into())
        );
        assert_eq!(parse("{code"), TemplateError::Unclosed);
    }

    fn autofill(hash: Option<&str>, domain: Option<&str>) -> Autofill {
        Autofill {
            android_app_hash: hash.map(str::to_owned),
            webotp_domain: domain.map(str::to_owned),
        }
    }

    #[test]
    fn autofill_lines_follow_the_text_with_webotp_last() {
        let code = Code::parse("042917").unwrap();
        let ttl = Duration::from_secs(180);
        let render = |a| {
            MessageTemplate::parse("Code: {code}", "a", a)
                .unwrap()
                .render(&code, ttl)
        };
        assert_eq!(
            render(autofill(Some("FA+9qCX9VSu"), Some("example.com"))).as_str(),
            "Code: 042917\n\nFA+9qCX9VSu\n@example.com #042917"
        );
        assert_eq!(
            render(autofill(None, Some("otp.example.com"))).as_str(),
            "Code: 042917\n\n@otp.example.com #042917"
        );
        assert_eq!(
            render(autofill(Some("FA+9qCX9VSu"), None)).as_str(),
            "Code: 042917\n\nFA+9qCX9VSu"
        );
    }

    #[test]
    fn refuses_bad_autofill_settings() {
        let parse = |a| MessageTemplate::parse("{code}", "a", a).unwrap_err();
        assert_eq!(parse(autofill(Some("short"), None)), TemplateError::AppHash);
        assert_eq!(parse(autofill(Some("FA+9qCX9VS!"), None)), TemplateError::AppHash);
        assert_eq!(
            parse(autofill(None, Some("bad domain"))),
            TemplateError::WebOtpDomain
        );
        assert_eq!(parse(autofill(None, Some(""))), TemplateError::WebOtpDomain);
    }

    #[test]
    fn a_message_must_fit_one_segment() {
        let ttl = Duration::from_secs(180);
        let fits = |t: &str| {
            MessageTemplate::parse(t, "a", Autofill::default())
                .unwrap()
                .check_single_segment(ttl)
        };
        let too_long = |length, limit, unit| Err(TemplateError::TooLong { length, limit, unit });
        // 154 characters of text plus the 6-digit code: exactly 160.
        assert_eq!(fits(&format!("{}{{code}}", "x".repeat(154))), Ok(()));
        assert_eq!(
            fits(&format!("{}{{code}}", "x".repeat(155))),
            too_long(161, 160, "GSM-7 characters")
        );
        // Extension characters count twice.
        assert_eq!(
            fits(&format!("{}{{code}}", "€".repeat(78))),
            too_long(162, 160, "GSM-7 characters")
        );
        // One character outside GSM-7 makes the whole message UCS-2: 70.
        assert_eq!(fits(&format!("✓{}{{code}}", "x".repeat(63))), Ok(()));
        assert_eq!(
            fits(&format!("✓{}{{code}}", "x".repeat(64))),
            too_long(71, 70, "UCS-2 characters")
        );
        assert_eq!(fits(MessageTemplate::DEFAULT), Ok(()));
    }
}
