//! Money caps: each send costs its destination country's price, and what
//! was spent is tallied per UTC day and month, service-wide and per
//! country. Past a soft cap only destinations with approved history keep
//! going; past a hard cap no code is sent until the window rolls. The rule,
//! the default prices and what they bound are in docs/behaviour.md
//! ("Money caps").

use std::collections::BTreeMap;

use super::time::{utc_day, utc_month};
use super::{Channel, Phone};

/// An amount in millionths of the price table's currency: prices of a
/// fraction of a cent stay exact, and a u64 holds any bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(u64);

impl Money {
    pub const ZERO: Self = Self(0);

    pub fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// An amount in currency units (`0.0079`), to the millionth; `None`
    /// for a negative, non-finite or absurd (a billion or more) amount.
    pub fn from_units(units: f64) -> Option<Self> {
        let micros = (units * 1_000_000.0).round();
        // 1e15 micros is a billion units: no price or cap is near it.
        (units.is_finite() && (0.0..1e15).contains(&micros)).then_some(Self(micros as u64))
    }

    pub fn micros(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Money {
    /// Units with at least 2 decimals and at most 6: `0.0079`, `500.00`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fraction = format!("{:06}", self.0 % 1_000_000);
        let kept = fraction.trim_end_matches('0');
        let kept = if kept.len() < 2 { &fraction[..2] } else { kept };
        write!(f, "{}.{kept}", self.0 / 1_000_000)
    }
}

/// What a send to each country costs: an operator's table over the
/// approximate default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prices {
    /// For a country the table doesn't name, and numbers of no country.
    pub default: Money,
    pub by_country: BTreeMap<String, Money>,
    /// ISO 4217, as events and logs show amounts.
    pub currency: String,
    /// A channel's own prices (WhatsApp's and calls' differ from SMS's);
    /// a channel without a table, or a country its table doesn't name and
    /// it has no default for, costs what an SMS does.
    pub channels: BTreeMap<&'static str, ChannelPrices>,
}

/// One channel's prices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelPrices {
    pub default: Option<Money>,
    pub by_country: BTreeMap<String, Money>,
}

/// Approximate prices of one SMS in US dollars, by destination country:
/// the order of magnitude of vendors' public list prices in 2026, so the
/// caps mean something before an operator sets its own. Not a quote.
const APPROXIMATE_USD: [(&str, u64); 40] = [
    ("AE", 45_000),
    ("AR", 60_000),
    ("AU", 50_000),
    ("BD", 30_000),
    ("BR", 40_000),
    ("CA", 8_000),
    ("CH", 70_000),
    ("CN", 40_000),
    ("CO", 30_000),
    ("DE", 90_000),
    ("EG", 120_000),
    ("ES", 80_000),
    ("FR", 80_000),
    ("GB", 40_000),
    ("GH", 200_000),
    ("ID", 350_000),
    ("IN", 80_000),
    ("IT", 80_000),
    ("JP", 70_000),
    ("KE", 150_000),
    ("KR", 30_000),
    ("MX", 50_000),
    ("MY", 60_000),
    ("NG", 300_000),
    ("NL", 100_000),
    ("PH", 200_000),
    ("PK", 250_000),
    ("PL", 40_000),
    ("RU", 500_000),
    ("SA", 60_000),
    ("SE", 60_000),
    ("SG", 50_000),
    ("TH", 60_000),
    ("TR", 30_000),
    ("TZ", 250_000),
    ("UA", 150_000),
    ("US", 8_000),
    ("UZ", 300_000),
    ("VN", 100_000),
    ("ZA", 30_000),
];

impl Prices {
    /// The approximate table in US dollars, with 0.10 for every country it
    /// doesn't name.
    pub fn approximate() -> Self {
        Self {
            default: Money(100_000),
            by_country: APPROXIMATE_USD
                .iter()
                .map(|(country, micros)| ((*country).to_owned(), Money(*micros)))
                .collect(),
            currency: "USD".into(),
            channels: BTreeMap::new(),
        }
    }

    /// What a send to `phone` on `channel` costs.
    pub fn of(&self, phone: &Phone, channel: Channel) -> Money {
        let country = phone.region();
        let own = self.channels.get(channel.as_str()).and_then(|table| {
            country
                .and_then(|c| table.by_country.get(c))
                .copied()
                .or(table.default)
        });
        own.unwrap_or_else(|| {
            country
                .and_then(|c| self.by_country.get(c))
                .copied()
                .unwrap_or(self.default)
        })
    }
}

impl Default for Prices {
    fn default() -> Self {
        Self::approximate()
    }
}

/// How long a tally lasts: the UTC calendar day or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Day,
    Month,
}

impl Span {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// A cap's two limits; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cap {
    pub soft: Option<Money>,
    pub hard: Option<Money>,
}

impl Cap {
    fn is_off(self) -> bool {
        self.soft.is_none() && self.hard.is_none()
    }
}

/// The caps, service-wide and for each country: alike, or a country's
/// own (its day's and its month's) where it has them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpendCaps {
    pub day: Cap,
    pub month: Cap,
    pub country_day: Cap,
    pub country_month: Cap,
    pub by_country: BTreeMap<String, [Cap; 2]>,
}

/// A tally a send adds to: the cap it answers to, its name in the store
/// (`day:20261205`, `month:202612:NG`) and when its window ends (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub span: Span,
    /// `None` for a service-wide tally.
    pub country: Option<String>,
    pub name: String,
    pub ends_ms: u64,
    pub cap: Cap,
}

/// Which limit a level is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapLevel {
    Soft,
    Hard,
}

impl CapLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Soft => "soft",
            Self::Hard => "hard",
        }
    }
}

/// A limit a tally is past: which, and the figures (`spent` counts the
/// send being judged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapReached {
    pub span: Span,
    pub country: Option<String>,
    pub level: CapLevel,
    pub limit: Money,
    pub spent: Money,
    pub ends_ms: u64,
}

impl CapReached {
    /// The tally's name and the level: what is told once per window.
    pub fn notice(&self, ledger: &Ledger) -> String {
        format!("{}:{}", ledger.name, self.level.as_str())
    }
}

/// What the caps make of a send: every limit its tallies are past, and
/// the one that refuses it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpendVerdict {
    /// With the ledger each is in, by index.
    pub reached: Vec<(usize, CapReached)>,
    pub refusal: Option<CapReached>,
}

impl SpendCaps {
    pub fn is_off(&self) -> bool {
        [self.day, self.month, self.country_day, self.country_month]
            .iter()
            .chain(self.by_country.values().flatten())
            .all(|cap| cap.is_off())
    }

    /// The tallies a send to `country` at unix ms `now_ms` adds to: those
    /// with a cap.
    pub fn ledgers(&self, country: &str, now_ms: u64) -> Vec<Ledger> {
        let (day, day_ends) = utc_day(now_ms);
        let (month, month_ends) = utc_month(now_ms);
        let [country_day, country_month] = self
            .by_country
            .get(country)
            .copied()
            .unwrap_or([self.country_day, self.country_month]);
        // The country's first: of the limits a send would pass, the
        // narrowest is the one it is refused by and told of, so a dear
        // country at its cap is not told as the whole service's.
        [
            (Span::Day, Some(country), country_day, &day, day_ends),
            (Span::Month, Some(country), country_month, &month, month_ends),
            (Span::Day, None, self.day, &day, day_ends),
            (Span::Month, None, self.month, &month, month_ends),
        ]
        .into_iter()
        .filter(|(_, _, cap, _, _)| !cap.is_off())
        .map(|(span, country, cap, when, ends_ms)| Ledger {
            span,
            country: country.map(str::to_owned),
            name: match country {
                Some(country) => format!("{}:{when}:{country}", span.as_str()),
                None => format!("{}:{when}", span.as_str()),
            },
            ends_ms,
            cap,
        })
        .collect()
    }

    /// The most each of `ledgers` may hold with a send added: its hard
    /// limit, and for a destination without approved history (`known`
    /// false) its soft one too. A store adds a send's cost to every ledger
    /// only if none would pass its limit, so a refused send never touches
    /// a total; a total at its limit is not past it.
    pub fn limits(ledgers: &[Ledger], known: bool) -> Vec<Option<Money>> {
        ledgers
            .iter()
            .map(|ledger| {
                let soft = ledger.cap.soft.filter(|_| !known);
                match (soft, ledger.cap.hard) {
                    (Some(soft), Some(hard)) => Some(soft.min(hard)),
                    (soft, hard) => soft.or(hard),
                }
            })
            .collect()
    }

    /// Judges a send of `cost` by what the store made of it: the ledgers'
    /// totals (with the cost, or as kept when a ledger refused it) and the
    /// ledger that refused it, if any. The refusal is the hard limit's when
    /// the cost would pass it, else the soft one's; the limits reached are
    /// the refusal's and every soft limit a total is past.
    pub fn judge(ledgers: &[Ledger], spent: &Spent, cost: Money) -> SpendVerdict {
        let mut verdict = SpendVerdict::default();
        let reached = |at: usize, level: CapLevel, limit: Money| {
            let ledger = &ledgers[at];
            CapReached {
                span: ledger.span,
                country: ledger.country.clone(),
                level,
                limit,
                spent: spent.totals[at],
                ends_ms: ledger.ends_ms,
            }
        };
        if let Some(at) = spent.refused {
            let cap = ledgers[at].cap;
            let with_cost = Money(spent.totals[at].0.saturating_add(cost.0));
            let refusal = match (cap.hard, cap.soft) {
                (Some(hard), _) if with_cost > hard => reached(at, CapLevel::Hard, hard),
                (_, Some(soft)) => reached(at, CapLevel::Soft, soft),
                (Some(hard), None) => reached(at, CapLevel::Hard, hard),
                (None, None) => return verdict,
            };
            verdict.reached.push((at, refusal.clone()));
            verdict.refusal = Some(refusal);
            return verdict;
        }
        for (at, (ledger, total)) in ledgers.iter().zip(&spent.totals).enumerate() {
            if let Some(soft) = ledger.cap.soft.filter(|soft| total > soft) {
                verdict.reached.push((at, reached(at, CapLevel::Soft, soft)));
            }
        }
        verdict
    }
}

/// What a store made of a send's cost: each ledger's total (with the
/// cost, or as kept when refused), and the first ledger whose limit the
/// cost would have passed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spent {
    pub totals: Vec<Money>,
    pub refused: Option<usize>,
}

/// A store's bounded add, for the memory store and the tests that hold the
/// Redis script to it: the cost goes on every total, or on none when one
/// would pass its limit.
pub fn add_within(totals: &[Money], cost: Money, limits: &[Option<Money>]) -> Spent {
    let passes = |(total, limit): (&Money, &Option<Money>)| {
        limit.is_some_and(|limit| total.0.saturating_add(cost.0) > limit.0)
    };
    match totals.iter().zip(limits).position(passes) {
        Some(at) => Spent {
            totals: totals.to_vec(),
            refused: Some(at),
        },
        None => Spent {
            totals: totals.iter().map(|t| Money(t.0.saturating_add(cost.0))).collect(),
            refused: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_471_913_000; // 2026-12-05T11:58:33Z

    fn units(u: f64) -> Money {
        Money::from_units(u).unwrap()
    }

    fn caps() -> SpendCaps {
        SpendCaps {
            day: Cap {
                soft: Some(units(250.0)),
                hard: Some(units(500.0)),
            },
            country_day: Cap {
                soft: None,
                hard: Some(units(100.0)),
            },
            ..SpendCaps::default()
        }
    }

    #[test]
    fn amounts_read_and_show_as_units() {
        assert_eq!(units(0.0079).micros(), 7_900);
        assert_eq!(units(0.0079).to_string(), "0.0079");
        assert_eq!(units(500.0).to_string(), "500.00");
        assert_eq!(units(0.3).to_string(), "0.30");
        assert_eq!(Money::from_micros(1).to_string(), "0.000001");
        for bad in [-0.01, f64::NAN, f64::INFINITY, 1e10] {
            assert_eq!(Money::from_units(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_send_costs_its_country_s_price() {
        let prices = Prices::approximate();
        let of = |number: &str| {
            prices
                .of(&Phone::parse(number).unwrap(), Channel::Sms)
                .to_string()
        };
        assert_eq!(of("+14155552671"), "0.008");
        assert_eq!(of("+2348031234567"), "0.30");
        // No row: the default.
        assert_eq!(of("+3545511234"), "0.10");
    }

    #[test]
    fn a_channel_s_own_table_then_its_default_then_the_sms_price() {
        let mut prices = Prices::approximate();
        prices.channels.insert(
            "whatsapp",
            ChannelPrices {
                default: Some(Money(20_000)),
                by_country: BTreeMap::from([("IN".to_owned(), Money(1_400))]),
            },
        );
        prices.channels.insert(
            "voice",
            ChannelPrices {
                default: None,
                by_country: BTreeMap::from([("US".to_owned(), Money(13_000))]),
            },
        );
        let of = |number: &str, channel| prices.of(&Phone::parse(number).unwrap(), channel).to_string();
        assert_eq!(of("+919876543210", Channel::Whatsapp), "0.0014");
        assert_eq!(of("+14155552671", Channel::Whatsapp), "0.02", "its default");
        assert_eq!(of("+14155552671", Channel::Voice), "0.013");
        assert_eq!(
            of("+2348031234567", Channel::Voice),
            "0.30",
            "no default: the SMS price"
        );
        assert_eq!(of("+919876543210", Channel::Sms), "0.08");
    }

    #[test]
    fn only_caps_that_are_set_make_ledgers_each_named_for_its_window() {
        let ledgers = caps().ledgers("NG", NOW);
        let names: Vec<_> = ledgers.iter().map(|l| (l.name.as_str(), l.ends_ms)).collect();
        let midnight = 1_796_515_200_000; // 2026-12-06T00:00:00Z
        assert_eq!(names, [("day:20261205:NG", midnight), ("day:20261205", midnight)]);
        assert!(SpendCaps::default().is_off());
        // A country's own caps stand in place of every country's.
        let own = Cap {
            soft: None,
            hard: Some(units(5.0)),
        };
        let caps = SpendCaps {
            by_country: BTreeMap::from([("NG".to_owned(), [own, Cap::default()])]),
            ..caps()
        };
        let ng = caps.ledgers("NG", NOW);
        assert_eq!((ng.len(), ng[0].cap), (2, own));
        assert_eq!(caps.ledgers("US", NOW)[0].cap.hard, Some(units(100.0)));
        let only_own = SpendCaps {
            by_country: caps.by_country.clone(),
            ..SpendCaps::default()
        };
        assert!(!only_own.is_off());
        assert!(only_own.ledgers("US", NOW).is_empty());
        assert!(SpendCaps::default().ledgers("NG", NOW).is_empty());
    }

    #[test]
    fn a_hard_cap_refuses_every_send_past_it_and_a_soft_one_only_unknown_destinations() {
        let ledgers = caps().ledgers("NG", NOW);
        // Day: soft 250, hard 500; NG: hard 100.
        assert_eq!(
            SpendCaps::limits(&ledgers, false),
            [Some(units(100.0)), Some(units(250.0))]
        );
        assert_eq!(
            SpendCaps::limits(&ledgers, true),
            [Some(units(100.0)), Some(units(500.0))]
        );
        let cost = units(0.3);
        let judge = |day: f64, country: f64, known: bool| {
            let limits = SpendCaps::limits(&ledgers, known);
            let spent = add_within(&[units(country), units(day)], cost, &limits);
            SpendCaps::judge(&ledgers, &spent, cost)
        };
        // Up to a limit is not past it.
        assert_eq!(judge(249.7, 99.7, false), SpendVerdict::default());
        let soft = judge(249.8, 50.0, false);
        let refusal = soft.refusal.unwrap();
        assert_eq!(
            (refusal.level, refusal.span, refusal.country),
            (CapLevel::Soft, Span::Day, None)
        );
        // The total as kept: the refused cost was never added.
        assert_eq!((refusal.limit, refusal.spent), (units(250.0), units(249.8)));
        assert_eq!(refusal.ends_ms, 1_796_515_200_000);
        assert_eq!(soft.reached.len(), 1);
        // Known destinations keep going past the soft cap, which is told...
        let known = judge(249.8, 50.0, true);
        assert_eq!(known.refusal, None);
        assert_eq!(known.reached[0].1.level, CapLevel::Soft);
        assert_eq!(known.reached[0].1.spent, units(250.1));
        // ... not past a hard one, the country's included.
        let country = judge(260.0, 99.8, true).refusal.unwrap();
        assert_eq!(
            (country.level, country.country.as_deref()),
            (CapLevel::Hard, Some("NG"))
        );
        let day = judge(499.8, 10.0, true).refusal.unwrap();
        assert_eq!((day.level, day.country), (CapLevel::Hard, None));
        // Unknown, past both: the hard limit is the one told.
        let both = judge(499.8, 10.0, false).refusal.unwrap();
        assert_eq!(both.level, CapLevel::Hard);
    }

    #[test]
    fn a_bounded_add_adds_to_every_total_or_to_none() {
        let limits = [Some(units(1.0)), None];
        let spent = add_within(&[units(0.5), units(7.0)], units(0.5), &limits);
        assert_eq!(spent.totals, [units(1.0), units(7.5)]);
        assert_eq!(spent.refused, None);
        let refused = add_within(&[units(0.6), units(7.0)], units(0.5), &limits);
        assert_eq!(refused.totals, [units(0.6), units(7.0)]);
        assert_eq!(refused.refused, Some(0));
    }
}
