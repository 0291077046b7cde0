//! What every WhatsApp vendor shares: the operator's approved templates,
//! one per language as Meta writes languages (`en_US`, `pt_BR`, `de`),
//! checked at start and picked for a message's locale.

use std::collections::BTreeMap;

use crate::config::ConfigError;
use crate::domain::Locale;

/// Approved templates by language, and the language of the rest.
#[derive(Debug, Clone)]
pub struct Templates {
    by_language: BTreeMap<String, String>,
    default_language: String,
}

impl Templates {
    /// Checks them at start: at least one, each language one Meta writes
    /// and each name one `fits` (the vendor's form of a template's name,
    /// said in `rule`), and one for the default language. `section` is
    /// their settings' (`whatsapp.meta`).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first setting that can't send.
    pub fn new(
        section: &str,
        by_language: &BTreeMap<String, String>,
        default_language: &str,
        fits: fn(&str) -> bool,
        rule: &str,
    ) -> Result<Self, ConfigError> {
        if by_language.is_empty() {
            return Err(ConfigError::new(
                format!("{section}.templates"),
                "must name an approved authentication template for at least one language",
            ));
        }
        let mut canonical = BTreeMap::new();
        for (language, name) in by_language {
            let key = format!("{section}.templates.{language}");
            // The environment's names arrive in lower case: `en_us`.
            let code = as_meta_writes(language);
            if !is_language(&code) {
                return Err(ConfigError::new(
                    key,
                    "is not a language code as Meta writes them (`en`, `en_US`, `pt_BR`)",
                ));
            }
            if !fits(name) {
                return Err(ConfigError::new(key, rule));
            }
            if canonical.insert(code, name.clone()).is_some() {
                return Err(ConfigError::new(key, "names a language twice"));
            }
        }
        let default_language = as_meta_writes(default_language);
        if !canonical.contains_key(&default_language) {
            return Err(ConfigError::new(
                format!("{section}.default_language"),
                format!("{default_language:?} has no template in {section}.templates"),
            ));
        }
        Ok(Self {
            by_language: canonical,
            default_language,
        })
    }

    /// The template and its language for a message in `locale`: the tag's
    /// own (`pt_BR` for `pt-BR`), its language's (`pt`), else the default
    /// language's.
    pub fn pick(&self, locale: Option<&Locale>) -> (&str, &str) {
        let own = locale.into_iter().flat_map(Locale::fallbacks).find_map(|tag| {
            let code = tag.as_str().replace('-', "_");
            self.by_language.get_key_value(&code)
        });
        let (language, name) = own
            .or_else(|| self.by_language.get_key_value(&self.default_language))
            .map_or(("", ""), |(l, n)| (l.as_str(), n.as_str()));
        (name, language)
    }
}

/// A language code in Meta's case: the language lower, the region upper.
fn as_meta_writes(code: &str) -> String {
    match code.split_once('_') {
        Some((language, region)) => format!(
            "{}_{}",
            language.to_ascii_lowercase(),
            region.to_ascii_uppercase()
        ),
        None => code.to_ascii_lowercase(),
    }
}

/// `en`, `fil`, `en_US`, `zh_HK`.
fn is_language(code: &str) -> bool {
    let (language, region) = code.split_once('_').unwrap_or((code, ""));
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty() || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        let by_language = [("en_US", "otp_en"), ("pt_BR", "otp_pt_br"), ("de", "otp_de")]
            .into_iter()
            .map(|(l, n)| (l.to_owned(), n.to_owned()))
            .collect();
        Templates::new("whatsapp.meta", &by_language, "en_US", |_| true, "").unwrap()
    }

    #[test]
    fn a_message_gets_its_locale_s_template_then_its_language_s_then_the_default() {
        let t = templates();
        let locale = |tag: &str| Locale::parse(tag).unwrap();
        assert_eq!(t.pick(Some(&locale("pt-BR"))), ("otp_pt_br", "pt_BR"));
        assert_eq!(t.pick(Some(&locale("de-AT"))), ("otp_de", "de"));
        assert_eq!(t.pick(Some(&locale("fr"))), ("otp_en", "en_US"));
        assert_eq!(t.pick(None), ("otp_en", "en_US"));
    }

    #[test]
    fn languages_from_the_environment_read_in_meta_s_case() {
        let by_language = [("en_us", "otp_en"), ("PT_br", "otp_pt")]
            .into_iter()
            .map(|(l, n)| (l.to_owned(), n.to_owned()))
            .collect();
        let t = Templates::new("whatsapp.meta", &by_language, "en_us", |_| true, "").unwrap();
        assert_eq!(
            t.pick(Some(&Locale::parse("pt-BR").unwrap())),
            ("otp_pt", "pt_BR")
        );
        assert_eq!(t.pick(None), ("otp_en", "en_US"));
        let twice = [("en_us", "a"), ("en_US", "b")]
            .into_iter()
            .map(|(l, n)| (l.to_owned(), n.to_owned()))
            .collect();
        let refused = Templates::new("whatsapp.meta", &twice, "en_US", |_| true, "").unwrap_err();
        assert!(refused.key.starts_with("whatsapp.meta.templates."), "{refused}");
    }

    #[test]
    fn languages_read_as_meta_writes_them() {
        for good in ["en", "fil", "en_US", "zh_HK"] {
            assert!(is_language(good), "{good}");
        }
        for bad in ["", "e", "EN", "en-US", "en_us", "en_USA", "engl"] {
            assert!(!is_language(bad), "{bad}");
        }
    }
}
