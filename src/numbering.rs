//! libphonenumber's rules for international numbers, run on regexes compiled
//! once per country code: a speed workaround for the `phonenumber` crate,
//! kept outside the domain, which uses it as it would the crate.
//!
//! The `phonenumber` crate keeps its regexes in one shared LRU cache and
//! looks each one up by its pattern text on every use: a lock, a hash of a
//! long string and a list update per pattern, a dozen times per number. That
//! cost more than the matching itself and made phone parsing the largest
//! part of a send (docs/performance.md). This module reads the same metadata
//! and follows the same steps as the crate's `parse` and `is_valid` for a
//! number written as `+` and digits; a test checks both agree on every
//! example number in the metadata.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use phonenumber::Type;
use regex::{Regex, RegexBuilder};

/// National significant numbers are this long at most (E.164 and the crate).
const MAX_NATIONAL_LEN: usize = 17;
const MIN_NATIONAL_LEN: usize = 2;

/// A valid number: its country code, national number, region and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    pub country_code: u16,
    pub national: String,
    /// ISO 3166 code; `None` for non-geographic numbers (`+800`, `+882`...).
    pub region: Option<&'static str>,
    /// Its type as libphonenumber names it, from the first pattern that
    /// matches in libphonenumber's order (fixed line before mobile).
    pub kind: Type,
}

/// Reads `digits`, the digits after the `+`, as a country code and a valid
/// national number; `None` when the metadata doesn't call it valid.
pub fn parse_international(digits: &str) -> Option<Numbered> {
    if digits.len() <= MIN_NATIONAL_LEN
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // The first one to three digits that name a country calling code.
    let (country_code, regions, mut national) = (1..=3).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        Some((code, regions_of(code)?, &digits[len..]))
    })?;

    // As the crate does, strip a national prefix when that leaves a number
    // of possible length for the region the digits point to.
    let unzeroed = national.trim_start_matches('0');
    let pointed = regions.source_for(unzeroed);
    let stripped;
    if let Some((region, _)) = pointed {
        stripped = region.strip_national_prefix(national);
        if !region.too_short(&stripped) {
            national = &stripped;
        }
    }
    // The crate holds a national number as leading zeros and a value under 2^56.
    let fits = national
        .trim_start_matches('0')
        .parse::<u64>()
        .is_ok_and(|v| v < 1 << 56);
    if !(MIN_NATIONAL_LEN..=MAX_NATIONAL_LEN).contains(&national.len()) || !fits {
        return None;
    }
    // Most numbers have no zero to drop and no prefix to strip: then the
    // region (and perhaps its kind) found above is the answer.
    let (region, known) = match pointed {
        Some(found) if national == unzeroed => found,
        _ => regions.source_for(national)?,
    };
    let kind = known.or_else(|| region.kind(national))?;
    Some(Numbered {
        country_code,
        national: national.to_owned(),
        region: Some(region.id).filter(|id| id.len() == 2),
        kind,
    })
}

/// The regions sharing a country code (the US, Canada and 23 others share
/// `+1`), compiled on first use and kept.
fn regions_of(code: u16) -> Option<Arc<Regions>> {
    static COMPILED: LazyLock<Mutex<HashMap<u16, Option<Arc<Regions>>>>> = LazyLock::new(Default::default);
    let lock = || COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(regions) = lock().get(&code) {
        return regions.clone();
    }
    // Compiled without the lock (tens of ms for +1's 25 regions), so numbers
    // of other countries aren't held up meanwhile; a race compiles twice.
    let regions = Regions::compile(code).map(Arc::new);
    lock().entry(code).or_insert(regions).clone()
}

/// Whether `id` is a region the metadata knows (`NG`, `GB`; not `UK`).
pub fn is_region(id: &str) -> bool {
    id != "001" && DATABASE.by_id(id).is_some()
}

/// Loads the crate's metadata (about 150 ms), so that the first request
/// doesn't wait for it.
pub fn load() {
    let _: &phonenumber::metadata::Database = &DATABASE;
}

struct Regions(Vec<Region>);

impl Regions {
    fn compile(code: u16) -> Option<Self> {
        let ids = DATABASE.region(&code)?;
        let regions: Vec<Region> = if let [only] = ids.as_slice() {
            // "001" names the non-geographic entities, filed by code.
            let meta = if *only == "001" {
                DATABASE.by_code(&code)?.into_iter().next()?
            } else {
                DATABASE.by_id(*only)?
            };
            vec![Region::compile(meta)]
        } else {
            ids.iter()
                .filter_map(|id| DATABASE.by_id(*id))
                .map(Region::compile)
                .collect()
        };
        (!regions.is_empty()).then_some(Self(regions))
    }

    /// The region a national number belongs to: the only one, or the first
    /// whose leading digits it starts with, or (for a region without leading
    /// digits) whose rules call it valid; with the number's kind there when
    /// the search worked it out.
    fn source_for(&self, national: &str) -> Option<(&Region, Option<Type>)> {
        if let [only] = self.0.as_slice() {
            return Some((only, None));
        }
        self.0.iter().find_map(|region| match &region.leading_digits {
            Some(leading) => leading
                .find(national)
                .is_some_and(|m| m.start() == 0)
                .then_some((region, None)),
            None => region.kind(national).map(|kind| (region, Some(kind))),
        })
    }
}

/// One region's rules.
struct Region {
    id: &'static str,
    general: Pattern,
    premium_rate: Option<Pattern>,
    toll_free: Option<Pattern>,
    shared_cost: Option<Pattern>,
    /// VoIP, personal, pager, UAN, voicemail, fixed line and mobile: every
    /// other kind a valid number can be, in libphonenumber's order.
    others: Vec<(Pattern, Type)>,
    leading_digits: Option<Regex>,
    national_prefix: Option<&'static str>,
    national_prefix_for_parsing: Option<Regex>,
    national_prefix_transform_rule: Option<&'static str>,
}

impl Region {
    fn compile(meta: &'static Metadata) -> Self {
        let descriptors = meta.descriptors();
        let pattern = |d: Option<&'static Descriptor>| d.map(Pattern::compile);
        Self {
            id: meta.id(),
            general: Pattern::compile(descriptors.general()),
            premium_rate: pattern(descriptors.premium_rate()),
            toll_free: pattern(descriptors.toll_free()),
            shared_cost: pattern(descriptors.shared_cost()),
            others: [
                (descriptors.voip(), Type::Voip),
                (descriptors.personal_number(), Type::PersonalNumber),
                (descriptors.pager(), Type::Pager),
                (descriptors.uan(), Type::Uan),
                (descriptors.voicemail(), Type::Voicemail),
                (descriptors.fixed_line(), Type::FixedLine),
                (descriptors.mobile(), Type::Mobile),
            ]
            .into_iter()
            .filter_map(|(d, kind)| Some((pattern(d)?, kind)))
            .collect(),
            leading_digits: meta.leading_digits().and_then(|r| regex(r.as_str())),
            national_prefix: meta.national_prefix(),
            national_prefix_for_parsing: meta.national_prefix_for_parsing().and_then(|r| regex(r.as_str())),
            national_prefix_transform_rule: meta.national_prefix_transform_rule(),
        }
    }

    /// The kind of a valid number, in libphonenumber's order of checks;
    /// `None` for a number of no known kind, which it calls invalid.
    fn kind(&self, national: &str) -> Option<Type> {
        let matches = |p: &Option<Pattern>| p.as_ref().is_some_and(|p| p.matches(national));
        if !self.general.matches(national) {
            None
        } else if matches(&self.premium_rate) {
            Some(Type::PremiumRate)
        } else if matches(&self.toll_free) {
            Some(Type::TollFree)
        } else if matches(&self.shared_cost) {
            Some(Type::SharedCost)
        } else {
            self.others
                .iter()
                .find(|(p, _)| p.matches(national))
                .map(|(_, kind)| *kind)
        }
    }

    /// The national number without a national (trunk) prefix or carrier
    /// code, following the crate's `helper::national_number` and the strip
    /// of the bare prefix its `parse` does after it.
    fn strip_national_prefix(&self, national: &str) -> String {
        let bare_prefix = self.national_prefix.filter(|p| !p.is_empty());
        let mut number = national.to_owned();
        match &self.national_prefix_for_parsing {
            // Without a parsing rule the crate strips the bare prefix here,
            // and then once more below.
            None => {
                if let Some(rest) = bare_prefix.and_then(|p| national.strip_prefix(p)) {
                    number = rest.to_owned();
                }
            }
            Some(parsing) => {
                if let Some(found) = parsing
                    .captures(national)
                    .filter(|c| c.get(0).is_some_and(|m| m.start() == 0))
                {
                    let end = found.get(0).map_or(0, |m| m.end());
                    let last_group = found.get(found.len() - 1);
                    match (self.national_prefix_transform_rule, last_group) {
                        (Some(rule), Some(_)) => {
                            let transformed = parsing.replace(national, rule).into_owned();
                            let viable = self.general.matches(national);
                            if !viable || self.general.matches(&transformed) {
                                number = transformed;
                            }
                        }
                        _ => number = national[end..].to_owned(),
                    }
                }
            }
        }
        if let Some(rest) = bare_prefix.and_then(|p| number.strip_prefix(p)) {
            number = rest.to_owned();
        }
        number
    }

    /// Shorter than any number of the region, as the crate's length check
    /// for an unknown kind decides it.
    fn too_short(&self, national: &str) -> bool {
        let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
        let possible = &self.general.possible_lengths;
        match possible.first() {
            Some(&shortest) => !self.general.local_lengths.contains(&len) && len < shortest,
            None => false,
        }
    }
}

/// A number pattern of one kind, with the lengths it allows.
struct Pattern {
    possible_lengths: &'static [u16],
    local_lengths: &'static [u16],
    /// Anchored at the start, as the crate matches it; `None` if it failed
    /// to compile here, which then matches nothing.
    regex: Option<Regex>,
}

impl Pattern {
    fn compile(descriptor: &'static Descriptor) -> Self {
        Self {
            possible_lengths: descriptor.possible_length(),
            local_lengths: descriptor.possible_local_length(),
            regex: regex(&format!("^(?:{})", descriptor.national_number().as_str())),
        }
    }

    fn matches(&self, national: &str) -> bool {
        let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
        (self.possible_lengths.is_empty() || self.possible_lengths.contains(&len))
            && self.regex.as_ref().is_some_and(|r| r.is_match(national))
    }
}

/// The metadata's patterns are written with insignificant whitespace. They
/// only ever see ASCII digits, so `\d` needn't be Unicode's: that keeps the
/// compiled automata small and their compile quick.
fn regex(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .ignore_whitespace(true)
        .unicode(false)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The kinds texting cares about (`domain::NumberKind`); fixed line,
    /// mobile and the rest are one, since the crate calls a number both
    /// when their patterns agree.
    fn class(kind: Type) -> u8 {
        match kind {
            Type::PremiumRate => 1,
            Type::SharedCost => 2,
            Type::PersonalNumber => 3,
            Type::Pager => 4,
            _ => 0,
        }
    }

    /// A valid number's E.164 form, and its region and kind where compared.
    type Verdict = Option<(String, Option<Option<&'static str>>, Option<u8>)>;

    /// What the crate itself says of `+digits`: the E.164 form of a valid
    /// number, its region and kind. Region and kind only for numbers without
    /// a leading zero: the crate's `metadata` and `number_type` drop those
    /// zeros before matching (its `is_valid` keeps them, as libphonenumber does).
    fn by_the_crate(digits: &str) -> Verdict {
        let number = phonenumber::parse(None, format!("+{digits}")).ok()?;
        if !phonenumber::is_valid_with(&DATABASE, &number) {
            return None;
        }
        let national = number.national().to_string();
        let zero_led = national.starts_with('0');
        let region = (!zero_led).then(|| {
            number
                .metadata(&DATABASE)
                .map(Metadata::id)
                .filter(|id| id.len() == 2)
                .map(|id| DATABASE.by_id(id).unwrap().id())
        });
        let kind = (!zero_led).then(|| class(number.number_type(&DATABASE)));
        Some((format!("+{}{national}", number.code().value()), region, kind))
    }

    fn by_us(digits: &str) -> Verdict {
        let n = parse_international(digits)?;
        Some((
            format!("+{}{}", n.country_code, n.national),
            Some(n.region),
            Some(class(n.kind)),
        ))
    }

    fn assert_agree(digits: &str) {
        let (theirs, ours) = (by_the_crate(digits), by_us(digits));
        match (&theirs, &ours) {
            (None, None) => {}
            (Some((e164, region, kind)), Some((our_e164, our_region, our_kind))) => {
                assert_eq!(e164, our_e164, "+{digits}");
                if region.is_some() {
                    assert_eq!(region, our_region, "+{digits}");
                    assert_eq!(kind, our_kind, "+{digits}");
                }
            }
            _ => panic!("+{digits}: the crate says {theirs:?}, we say {ours:?}"),
        }
    }

    /// Every example number of every kind in every region, and each one with
    /// a digit changed, dropped and added: valid and invalid numbers alike.
    #[test]
    fn agrees_with_the_crate_on_every_example_number() {
        let mut checked = 0;
        let mut valid = 0;
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let examples = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .filter_map(Descriptor::example);
            for example in examples {
                let digits = format!("{}{example}", meta.country_code());
                let last = digits.len() - 1;
                let changed = format!("{}{}", &digits[..last], (digits.as_bytes()[last] - b'0' + 1) % 10);
                for variant in [
                    digits.clone(),
                    changed,
                    digits[..last].to_owned(),
                    format!("{digits}7"),
                ] {
                    assert_agree(&variant);
                    checked += 1;
                    valid += usize::from(by_us(&variant).is_some());
                }
            }
        }
        // The corpus is large and mixed, so the agreement means something.
        assert!(checked > 4_000, "{checked}");
        assert!(valid > 2_000 && valid < checked, "{valid} of {checked}");
    }

    #[test]
    fn knows_trunk_prefixes_regions_and_kinds() {
        let ours = |d: &str| by_us(d).map(|(e164, region, kind)| (e164, region.unwrap(), kind.unwrap()));
        // A German number written with its trunk 0 after the country code.
        assert_eq!(ours("4903012345678").unwrap().0, "+493012345678");
        // Italian landlines keep their leading 0.
        assert_eq!(ours("390212345678").unwrap().1, Some("IT"));
        assert_eq!(ours("16135550123").unwrap().1, Some("CA"));
        assert_eq!(ours("19002345678").unwrap().2, class(Type::PremiumRate));
        assert_eq!(ours("80012345678").unwrap().1, None);
        assert_eq!(ours("14155552671").unwrap().1, Some("US"));
        for invalid in ["", "1", "0123", "999123456789", "1415555267", "10005552671"] {
            assert_eq!(by_us(invalid), None, "{invalid}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_crate_on_any_digits(digits in "[1-9][0-9]{2,16}") {
            assert_agree(&digits);
        }
    }
}
