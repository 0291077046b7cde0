//! What a voice call says: the code digit by digit, each a sentence of its
//! own so a text-to-speech voice pauses after it, then the whole again, in
//! the verification's language where otpd has its words, else English.

use std::fmt;

use super::{Code, Locale};

/// The words a call says around the digits, by language, and the voice
/// a language without a region is read in.
struct Words {
    language: &'static str,
    voice: &'static str,
    intro: &'static str,
    again: &'static str,
}

/// English first: the fallback for every language not listed.
const WORDS: &[Words] = &[
    Words {
        language: "en",
        voice: "en-US",
        intro: "Your verification code is",
        again: "Once again, your code is",
    },
    Words {
        language: "es",
        voice: "es-ES",
        intro: "Su código de verificación es",
        again: "Otra vez, su código es",
    },
    Words {
        language: "fr",
        voice: "fr-FR",
        intro: "Votre code de vérification est",
        again: "Je répète, votre code est",
    },
    Words {
        language: "de",
        voice: "de-DE",
        intro: "Ihr Bestätigungscode lautet",
        again: "Noch einmal, Ihr Code lautet",
    },
    Words {
        language: "it",
        voice: "it-IT",
        intro: "Il tuo codice di verifica è",
        again: "Ripeto, il tuo codice è",
    },
    Words {
        language: "pt",
        voice: "pt-BR",
        intro: "Seu código de verificação é",
        again: "Repetindo, seu código é",
    },
    Words {
        language: "nl",
        voice: "nl-NL",
        intro: "Uw verificatiecode is",
        again: "Nogmaals, uw code is",
    },
];

/// A call's words and the language its voice speaks. Holds the code, so
/// its `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Speech {
    language: String,
    /// The language's own voice, for a vendor that has none for the region.
    usual: &'static str,
    text: String,
}

impl Speech {
    /// What a call for `code` says in `locale` (English without one, or for
    /// a language otpd has no words for): `Your verification code is 1. 2.
    /// 3. 4. 5. 6. Once again, your code is 1. 2. …`.
    pub fn of(code: &Code, locale: Option<&Locale>) -> Self {
        let words = locale
            .and_then(|l| WORDS.iter().find(|w| w.language == l.language().as_str()))
            .unwrap_or(&WORDS[0]);
        // The region the caller asked for, where the language is its own.
        let language = match locale.map(Locale::as_str) {
            Some(tag) if tag.len() == 5 && tag.starts_with(words.language) => tag.to_owned(),
            _ => words.voice.to_owned(),
        };
        let digits: Vec<String> = code.expose().chars().map(|d| format!("{d}.")).collect();
        let digits = digits.join(" ");
        Self {
            language,
            usual: words.voice,
            text: format!("{}: {digits} {}: {digits}", words.intro, words.again),
        }
    }

    /// The voice's language as BCP 47 writes it with a region (`en-US`,
    /// `pt-BR`), the form every voice API takes.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The voice of the language without the asked region (`en-US` for
    /// `en-NZ`): for a vendor that has no voice for [`Speech::language`].
    pub fn usual_language(&self) -> &'static str {
        self.usual
    }

    /// The words, code included: for the vendor's call and the console only.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Speech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Speech({}, <redacted>)", self.language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> Code {
        Code::parse("907142").unwrap()
    }

    #[test]
    fn a_call_reads_each_digit_as_a_sentence_twice() {
        let speech = Speech::of(&code(), None);
        assert_eq!(
            speech.expose(),
            "Your verification code is: 9. 0. 7. 1. 4. 2. Once again, your code is: 9. 0. 7. 1. 4. 2."
        );
        assert_eq!(speech.language(), "en-US");
    }

    #[test]
    fn a_call_speaks_the_asked_language_and_region_or_english() {
        let at = |tag: &str| Speech::of(&code(), Some(&Locale::parse(tag).unwrap()));
        assert_eq!(at("pt-PT").language(), "pt-PT");
        assert!(at("pt-PT")
            .expose()
            .starts_with("Seu código de verificação é: 9."));
        assert_eq!(at("de").language(), "de-DE");
        assert_eq!(at("zh-Hans").language(), "en-US");
        assert!(at("zh-Hans").expose().starts_with("Your verification code is"));
        // A script is not a region: the language's own voice.
        assert_eq!(at("sr-Latn").language(), "en-US");
        assert_eq!(at("es-419").language(), "es-ES");
    }

    #[test]
    fn debug_shows_no_code() {
        let shown = format!("{:?}", Speech::of(&code(), None));
        assert!(!shown.contains('9'), "{shown}");
        assert_eq!(shown, "Speech(en-US, <redacted>)");
    }
}
