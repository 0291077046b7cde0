//! Languages: a `Locale` parsed strictly, the built-in templates, which
//! language each country reads by default, and the choice of template for
//! one send.

use std::collections::HashMap;
use std::fmt;

use super::MessageTemplate;

/// Longest locale taken (`zh-Hans`, `pt-BR`, `es-419`).
const MAX_LEN: usize = 16;

/// A BCP 47 tag of the form `language[-Script][-REGION]`, in canonical case:
/// `pt-BR`, `zh-Hans`, `sr-Latn-RS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locale(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the locale must be a language tag such as en, pt-BR or zh-Hans (language[-Script][-REGION])")]
pub struct LocaleError;

impl Locale {
    /// # Errors
    /// [`LocaleError`] for anything but `language[-Script][-REGION]`.
    pub fn parse(raw: &str) -> Result<Self, LocaleError> {
        if raw.is_empty() || raw.len() > MAX_LEN || !raw.is_ascii() {
            return Err(LocaleError);
        }
        let mut parts = raw.split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(LocaleError);
        }
        let mut tag = language.to_ascii_lowercase();
        let (mut script_seen, mut region_seen) = (false, false);
        for part in parts {
            let alpha = part.bytes().all(|b| b.is_ascii_alphabetic());
            if part.len() == 4 && alpha && !script_seen && !region_seen {
                script_seen = true;
                tag.push('-');
                tag.push_str(&part[..1].to_ascii_uppercase());
                tag.push_str(&part[1..].to_ascii_lowercase());
            } else if !region_seen
                && ((part.len() == 2 && alpha)
                    || (part.len() == 3 && part.bytes().all(|b| b.is_ascii_digit())))
            {
                region_seen = true;
                tag.push('-');
                tag.push_str(&part.to_ascii_uppercase());
            } else {
                return Err(LocaleError);
            }
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language alone: `pt` for `pt-BR`.
    pub fn language(&self) -> Locale {
        Self(self.0.split('-').next().unwrap_or_default().to_owned())
    }

    /// The tag, then each shorter one, its last part dropped: `zh-Hant-TW`,
    /// `zh-Hant`, `zh`.
    pub fn fallbacks(&self) -> Vec<Locale> {
        let mut tags = vec![self.clone()];
        let mut tag = self.0.as_str();
        while let Some((shorter, _)) = tag.rsplit_once('-') {
            tags.push(Self(shorter.to_owned()));
            tag = shorter;
        }
        tags
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A built-in template's text by the number of minutes it will show. Most
/// languages here don't inflect the noun after a number, or use an
/// abbreviation that doesn't change (`min.`, `хв.`); German, Italian and
/// Dutch have one form for 1 and one for the rest; Arabic has four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forms {
    /// The same text for every count.
    Any(&'static str),
    /// CLDR's `one` (1) and `other`.
    OneOther { one: &'static str, other: &'static str },
    /// CLDR's Arabic categories: `one` (1, written out: a bare "1 دقيقة"
    /// reads wrong), `two` (2, the dual, written out likewise), `few` (the
    /// last two digits 3 to 10: the plural دقائق) and the rest, `many` and
    /// `other` alike (the singular دقيقة after 11 to 99, 100, ...).
    Arabic {
        one: &'static str,
        two: &'static str,
        few: &'static str,
        other: &'static str,
    },
}

impl Forms {
    /// The text for a message that says `minutes`.
    pub fn text(self, minutes: u64) -> &'static str {
        match self {
            Self::Any(text) => text,
            Self::OneOther { one, other } => {
                if minutes == 1 {
                    one
                } else {
                    other
                }
            }
            Self::Arabic { one, two, few, other } => match (minutes, minutes % 100) {
                (1, _) => one,
                (2, _) => two,
                (_, 3..=10) => few,
                _ => other,
            },
        }
    }
}

/// The built-in templates, by locale; English is `sms.template` itself.
/// Each fits one segment with a 16-character app name and any minute count
/// up to a day's (a test renders every one). Right-to-left ones begin with
/// a word of their script, so phones lay the line out right to left.
pub const BUILT_IN: &[(&str, Forms)] = &[
    (
        "es",
        Forms::Any("{app}: tu código es {code}. Caduca en {minutes} min."),
    ),
    (
        "pt",
        Forms::Any("{app}: seu código é {code}. Expira em {minutes} min."),
    ),
    (
        "fr",
        Forms::Any("{app} : votre code est {code}. Il expire dans {minutes} min."),
    ),
    (
        "de",
        Forms::OneOther {
            one: "{app}: Ihr Code lautet {code}. Er ist {minutes} Minute gültig.",
            other: "{app}: Ihr Code lautet {code}. Er ist {minutes} Minuten gültig.",
        },
    ),
    (
        "it",
        Forms::OneOther {
            one: "{app}: il tuo codice è {code}. Scade tra {minutes} minuto.",
            other: "{app}: il tuo codice è {code}. Scade tra {minutes} minuti.",
        },
    ),
    (
        "nl",
        Forms::OneOther {
            one: "{app}: je verificatiecode is {code}. Deze code is {minutes} minuut geldig.",
            other: "{app}: je verificatiecode is {code}. Deze code is {minutes} minuten geldig.",
        },
    ),
    (
        "ru",
        Forms::Any("{app}: ваш код {code}. Действует {minutes} мин."),
    ),
    ("uk", Forms::Any("{app}: ваш код {code}. Дійсний {minutes} хв.")),
    (
        "pl",
        Forms::Any("{app}: Twój kod to {code}. Ważny przez {minutes} min."),
    ),
    (
        "tr",
        Forms::Any("{app} doğrulama kodunuz: {code}. {minutes} dakika geçerlidir."),
    ),
    (
        "ar",
        Forms::Arabic {
            one: "رمز التحقق من {app} هو {code}. صالح لمدة دقيقة واحدة.",
            two: "رمز التحقق من {app} هو {code}. صالح لمدة دقيقتين.",
            few: "رمز التحقق من {app} هو {code}. صالح لمدة {minutes} دقائق.",
            other: "رمز التحقق من {app} هو {code}. صالح لمدة {minutes} دقيقة.",
        },
    ),
    (
        "hi",
        Forms::Any("{app}: आपका कोड {code} है। यह {minutes} मिनट के लिए मान्य है।"),
    ),
    (
        "bn",
        Forms::Any("{app}: আপনার কোড {code}। কোডটি {minutes} মিনিটের জন্য বৈধ।"),
    ),
    (
        "id",
        Forms::Any("{app}: kode verifikasi Anda {code}. Berlaku selama {minutes} menit."),
    ),
    (
        "ms",
        Forms::Any("{app}: kod pengesahan anda ialah {code}. Sah selama {minutes} minit."),
    ),
    (
        "vi",
        Forms::Any("{app}: mã của bạn là {code}. Hết hạn sau {minutes} phút."),
    ),
    (
        "th",
        Forms::Any("{app}: รหัสยืนยันของคุณคือ {code} ใช้ได้ภายใน {minutes} นาที"),
    ),
    (
        "ja",
        Forms::Any("{app}の認証コードは{code}です。有効期限は{minutes}分です。"),
    ),
    (
        "ko",
        Forms::Any("[{app}] 인증번호는 {code}입니다. {minutes}분 안에 입력해 주세요."),
    ),
    (
        "zh-Hans",
        Forms::Any("您的{app}验证码是{code}，{minutes}分钟内有效。"),
    ),
    (
        "zh-Hant",
        Forms::Any("您的{app}驗證碼是{code}，{minutes}分鐘內有效。"),
    ),
    (
        "sw",
        Forms::Any("{app}: msimbo wako wa uthibitishaji ni {code}. Ni halali kwa dakika {minutes}."),
    ),
    (
        "fa",
        Forms::Any("کد تأیید {app}: {code}. این کد تا {minutes} دقیقه معتبر است."),
    ),
    (
        "af",
        Forms::Any("{app}: jou kode is {code}. Dit verval oor {minutes} min."),
    ),
    (
        "ca",
        Forms::Any("{app}: el teu codi és {code}. Caduca en {minutes} min."),
    ),
    ("cs", Forms::Any("{app}: váš kód je {code}. Platí {minutes} min.")),
    (
        "da",
        Forms::Any("{app}: din kode er {code}. Den udløber om {minutes} min."),
    ),
    (
        "el",
        Forms::OneOther {
            one: "{app}: ο κωδικός σας είναι {code}. Ισχύει {minutes} λεπτό.",
            other: "{app}: ο κωδικός σας είναι {code}. Ισχύει {minutes} λεπτά.",
        },
    ),
    (
        "et",
        Forms::Any("{app}: teie kood on {code}. Kehtib {minutes} min."),
    ),
    (
        "fi",
        Forms::Any("{app}: koodisi on {code}. Voimassa {minutes} min."),
    ),
    (
        "he",
        Forms::OneOther {
            one: "קוד האימות שלך ל-{app} הוא {code}. בתוקף דקה אחת.",
            other: "קוד האימות שלך ל-{app} הוא {code}. בתוקף {minutes} דקות.",
        },
    ),
    (
        "hr",
        Forms::Any("{app}: vaš kod je {code}. Vrijedi {minutes} min."),
    ),
    (
        "hu",
        Forms::Any("{app}: a kódod {code}. {minutes} percig érvényes."),
    ),
    ("kn", Forms::Any("{app}: ನಿಮ್ಮ ಕೋಡ್ {code}. {minutes} ನಿಮಿಷ ಮಾನ್ಯ.")),
    (
        "lt",
        Forms::Any("{app}: jūsų kodas {code}. Galioja {minutes} min."),
    ),
    ("mr", Forms::Any("{app}: तुमचा कोड {code} आहे. {minutes} मिनिटे वैध.")),
    (
        "nb",
        Forms::Any("{app}: koden din er {code}. Den er gyldig i {minutes} min."),
    ),
    (
        "ro",
        Forms::Any("{app}: codul tău este {code}. Expiră în {minutes} min."),
    ),
    ("sk", Forms::Any("{app}: váš kód je {code}. Platí {minutes} min.")),
    (
        "sv",
        Forms::Any("{app}: din kod är {code}. Den gäller i {minutes} min."),
    ),
    (
        "tl",
        Forms::Any("{app}: ang iyong code ay {code}. Mag-e-expire ito sa loob ng {minutes} minuto."),
    ),
    ("te", Forms::Any("{app}: మీ కోడ్ {code}. {minutes} నిమిషాలు చెల్లుతుంది.")),
];

/// Tags that name a built-in template under another name, as CLDR's likely
/// subtags and aliases resolve them: Chinese by region to its script (as
/// Twilio's `zh`, `zh-CN` and `zh-HK` mean), Norwegian to Bokmål, and the
/// old or other names of Tagalog, Hebrew and Indonesian.
pub const ALIASES: &[(&str, &str)] = &[
    ("zh", "zh-Hans"),
    ("zh-CN", "zh-Hans"),
    ("zh-SG", "zh-Hans"),
    ("zh-MY", "zh-Hans"),
    ("zh-TW", "zh-Hant"),
    ("zh-HK", "zh-Hant"),
    ("zh-MO", "zh-Hant"),
    ("no", "nb"),
    ("fil", "tl"),
    ("iw", "he"),
    ("in", "id"),
];

/// The language each country reads by default, where one language clearly
/// serves (multilingual countries, and those where SMS codes usually come in
/// English, such as India, are left to `sms.template` unless mapped).
pub const COUNTRY_LOCALES: &[(&str, &[&str])] = &[
    (
        "es",
        &[
            "ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY", "SV", "NI",
            "CR", "PA", "UY", "GQ",
        ],
    ),
    ("pt", &["BR", "PT", "AO", "MZ", "GW", "ST", "TL"]),
    (
        "fr",
        &[
            "FR", "MC", "SN", "CI", "ML", "BF", "NE", "TG", "BJ", "GA", "CG", "CD", "GN", "PF", "NC",
        ],
    ),
    ("de", &["DE", "AT", "LI"]),
    ("it", &["IT", "SM", "VA"]),
    ("nl", &["NL", "SR"]),
    ("ru", &["RU", "BY", "KZ", "KG"]),
    ("uk", &["UA"]),
    ("pl", &["PL"]),
    ("tr", &["TR"]),
    (
        "ar",
        &[
            "SA", "AE", "EG", "IQ", "JO", "KW", "LB", "LY", "MA", "OM", "QA", "SY", "TN", "YE", "BH", "DZ",
            "SD", "PS",
        ],
    ),
    ("bn", &["BD"]),
    ("id", &["ID"]),
    ("ms", &["MY", "BN"]),
    ("vi", &["VN"]),
    ("th", &["TH"]),
    ("ja", &["JP"]),
    ("ko", &["KR"]),
    ("zh-Hans", &["CN"]),
    ("zh-Hant", &["TW", "HK", "MO"]),
    ("sw", &["TZ"]),
    ("fa", &["IR"]),
    ("ca", &["AD"]),
    ("cs", &["CZ"]),
    ("da", &["DK", "GL", "FO"]),
    ("el", &["GR", "CY"]),
    ("et", &["EE"]),
    ("fi", &["FI"]),
    ("he", &["IL"]),
    ("hr", &["HR"]),
    ("hu", &["HU"]),
    ("lt", &["LT"]),
    ("nb", &["NO"]),
    ("ro", &["RO", "MD"]),
    ("sk", &["SK"]),
    ("sv", &["SE"]),
];

/// The templates by locale and the country map, built at start.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    by_locale: HashMap<Locale, MessageTemplate>,
    by_country: HashMap<String, Locale>,
}

impl Templates {
    pub fn new(by_locale: HashMap<Locale, MessageTemplate>, by_country: HashMap<String, Locale>) -> Self {
        Self {
            by_locale,
            by_country,
        }
    }

    /// The locale of a send: the one asked for, else the destination
    /// country's language, if either.
    pub fn locale_for<'a>(&'a self, asked: Option<&'a Locale>, country: Option<&str>) -> Option<&'a Locale> {
        asked.or_else(|| self.by_country.get(country?))
    }

    /// The template for a send: the locale asked for, else the destination
    /// country's language, else `None` (the default template).
    pub fn pick(&self, asked: Option<&Locale>, country: Option<&str>) -> Option<&MessageTemplate> {
        match asked {
            Some(locale) => self.resolve(locale),
            None => self.resolve(self.by_country.get(country?)?),
        }
    }

    /// A tag's template as BCP 47 lookup goes, each step also under its
    /// alias: the tag (`zh-Hant-TW`), less its region (`zh-Hant`), its
    /// language (`pt` for `pt-BR`, `zh` and so `zh-Hans` for `zh-US`).
    fn resolve(&self, locale: &Locale) -> Option<&MessageTemplate> {
        locale.fallbacks().into_iter().find_map(|tag| {
            self.by_locale.get(&tag).or_else(|| {
                let (_, alias) = ALIASES.iter().find(|(from, _)| *from == tag.as_str())?;
                self.by_locale.get(&Locale((*alias).to_owned()))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_are_parsed_strictly_into_canonical_case() {
        for (raw, canonical) in [
            ("en", "en"),
            ("PT-br", "pt-BR"),
            ("zh-hans", "zh-Hans"),
            ("zh_Hant_TW", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("fil", "fil"),
        ] {
            assert_eq!(Locale::parse(raw).unwrap().as_str(), canonical, "{raw}");
        }
        for bad in [
            "",
            "e",
            "english",
            "en-",
            "en-GB-GB",
            "en-US-Hans",
            "fr-1",
            "日本",
            "en GB",
            "x-12345678901234",
        ] {
            assert_eq!(Locale::parse(bad), Err(LocaleError), "{bad}");
        }
        assert_eq!(Locale::parse("pt-BR").unwrap().language().as_str(), "pt");
    }

    #[test]
    fn plural_forms_follow_the_minute_count() {
        let de = BUILT_IN.iter().find(|(l, _)| *l == "de").unwrap().1;
        assert!(de.text(1).contains("{minutes} Minute gültig"));
        for n in [2, 3, 10, 60] {
            assert!(de.text(n).contains("{minutes} Minuten gültig"), "{n}");
        }
        let ar = BUILT_IN.iter().find(|(l, _)| *l == "ar").unwrap().1;
        assert!(ar.text(1).ends_with("لمدة دقيقة واحدة."));
        assert!(ar.text(2).ends_with("لمدة دقيقتين."));
        for n in [3, 5, 10, 103, 110] {
            assert!(ar.text(n).ends_with("{minutes} دقائق."), "{n}");
        }
        for n in [11, 15, 99, 100, 101, 102, 111, 1440] {
            assert!(ar.text(n).ends_with("{minutes} دقيقة."), "{n}");
        }
    }

    use super::super::{Autofill, Code};
    use std::time::Duration;

    fn text_of(template: &MessageTemplate) -> String {
        let code = Code::parse("123456").unwrap();
        template
            .render(&code, Duration::from_secs(180))
            .as_str()
            .to_owned()
    }

    fn template(locale: &str) -> MessageTemplate {
        let (_, forms) = BUILT_IN.iter().find(|(l, _)| *l == locale).unwrap();
        MessageTemplate::parse(forms.text(3), "A", Autofill::default()).unwrap()
    }

    /// Every built-in template, by its locale.
    fn built_in() -> Templates {
        let by_locale = BUILT_IN
            .iter()
            .map(|(l, _)| (Locale::parse(l).unwrap(), template(l)))
            .collect();
        Templates::new(by_locale, HashMap::new())
    }

    #[test]
    fn tags_resolve_as_bcp_47_likely_subtags_do() {
        let templates = built_in();
        for (asked, gets) in [
            ("zh", "zh-Hans"),
            ("zh-CN", "zh-Hans"),
            ("zh-SG", "zh-Hans"),
            ("zh-Hans-CN", "zh-Hans"),
            ("zh-US", "zh-Hans"),
            ("zh-TW", "zh-Hant"),
            ("zh-HK", "zh-Hant"),
            ("zh-MO", "zh-Hant"),
            ("zh-Hant", "zh-Hant"),
            ("zh-Hant-HK", "zh-Hant"),
            ("pt-BR", "pt"),
            ("es-419", "es"),
            ("nb-NO", "nb"),
            ("no", "nb"),
            ("fil", "tl"),
            ("iw", "he"),
            ("sv-FI", "sv"),
        ] {
            let picked = templates.pick(Some(&Locale::parse(asked).unwrap()), None);
            assert_eq!(picked.map(text_of), Some(text_of(&template(gets))), "{asked}");
        }
        for english in ["en", "en-GB", "en-US", "xx"] {
            assert!(
                templates
                    .pick(Some(&Locale::parse(english).unwrap()), None)
                    .is_none(),
                "{english}"
            );
        }
    }

    #[test]
    fn every_language_twilio_verify_lists_has_a_template() {
        // Twilio Verify's documented SMS locales, English aside (the default
        // template speaks it).
        let templates = built_in();
        for tag in [
            "af", "ar", "ca", "zh", "zh-CN", "zh-HK", "hr", "cs", "da", "nl", "et", "fi", "fr", "de", "el",
            "he", "hi", "hu", "id", "it", "ja", "kn", "ko", "lt", "ms", "mr", "nb", "pl", "pt-BR", "pt",
            "ro", "ru", "sk", "es", "sv", "tl", "te", "th", "tr", "vi",
        ] {
            assert!(
                templates.pick(Some(&Locale::parse(tag).unwrap()), None).is_some(),
                "{tag}"
            );
        }
    }

    #[test]
    fn every_built_in_locale_and_mapped_language_is_canonical_and_known() {
        for (locale, _) in BUILT_IN {
            assert_eq!(Locale::parse(locale).unwrap().as_str(), *locale);
        }
        for (from, to) in ALIASES {
            assert_eq!(Locale::parse(from).unwrap().as_str(), *from);
            assert!(BUILT_IN.iter().any(|(l, _)| l == to), "{to}");
            assert!(!BUILT_IN.iter().any(|(l, _)| l == from), "{from} is built in");
        }
        for (locale, countries) in COUNTRY_LOCALES {
            assert!(BUILT_IN.iter().any(|(l, _)| l == locale), "{locale}");
            for country in *countries {
                let claimed = COUNTRY_LOCALES
                    .iter()
                    .filter(|(_, cs)| cs.contains(country))
                    .count();
                assert_eq!(claimed, 1, "{country} mapped twice");
            }
        }
    }
}
