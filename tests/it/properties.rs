//! Property tests on the domain: whatever the input, parsing never panics,
//! and hashing and verification agree.

use otpd::domain::{Autofill, Code, CodeHasher, HashKey, MessageTemplate, Phone};
use proptest::prelude::*;

fn hasher() -> CodeHasher {
    CodeHasher::new(
        HashKey::new(*b"property-key-0123456789").unwrap(),
        vec![HashKey::new(*b"older-key-0123456789").unwrap()],
    )
}

fn us_phone() -> impl Strategy<Value = Phone> {
    (0u32..10_000).prop_map(|n| Phone::parse(&format!("+1415555{n:04}")).unwrap())
}

fn code() -> impl Strategy<Value = Code> {
    (0u32..1_000_000).prop_map(|n| Code::parse(&format!("{n:06}")).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_a_phone_never_panics(raw in any::<String>()) {
        let _ = Phone::parse(&raw);
    }

    #[test]
    fn parsing_phone_like_text_never_panics(raw in r"\+?[0-9 ()\-.]{0,40}") {
        if let Ok(phone) = Phone::parse(&raw) {
            prop_assert!(phone.as_str().starts_with('+'));
            prop_assert!(phone.as_str()[1..].bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn a_code_is_six_ascii_digits_and_nothing_else(raw in any::<String>()) {
        let is_code = raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(Code::parse(&raw).is_ok(), is_code);
    }

    #[test]
    fn templates_never_panic(template in any::<String>(), app in any::<String>()) {
        if let Ok(t) = MessageTemplate::parse(&template, &app, Autofill::default()) {
            let text = t.render(&Code::parse("123456").unwrap(), std::time::Duration::from_secs(180));
            prop_assert!(text.as_str().contains("123456"));
        }
    }

    #[test]
    fn the_right_code_verifies_and_no_other(phone in us_phone(), right in code(), other in code()) {
        let h = hasher();
        let stored = h.hash(&phone, &right);
        prop_assert!(h.candidates(&phone, &right).iter().any(|c| c.matches(stored.as_bytes())));
        if other != right {
            prop_assert!(!h.candidates(&phone, &other).iter().any(|c| c.matches(stored.as_bytes())));
        }
    }

    #[test]
    fn a_code_hashed_for_one_phone_fails_for_another(a in us_phone(), b in us_phone(), c in code()) {
        let h = hasher();
        let stored = h.hash(&a, &c);
        prop_assert_eq!(h.candidates(&b, &c).iter().any(|x| x.matches(stored.as_bytes())), a == b);
    }
}

#[test]
fn generated_codes_are_always_six_digits() {
    for _ in 0..10_000 {
        let code = Code::generate();
        assert!(code.expose().len() == 6 && code.expose().bytes().all(|b| b.is_ascii_digit()));
        assert!(Code::parse(code.expose()).is_ok());
    }
}
