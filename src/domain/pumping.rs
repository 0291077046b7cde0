//! The pumping breaker: SMS pumping texts number ranges whose termination
//! fees the attacker shares, and never verifies. Each send counts for its
//! destination's country and its prefix (a "1k prefix": the number less its
//! last digits); a group whose unverified sends outgrow what its own
//! approvals and the deployment's history allow is blocked for a while,
//! longer each time it comes back. The formula, its defaults and what an
//! attack costs under them are in docs/behaviour.md; the figures there are
//! computed by the tests below.

use std::time::Duration;

use super::Phone;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// Hour slots a group's counts are kept for: the day window (24) and the
/// one being filled.
pub const KEEP_HOURS: u64 = 25;
/// Day slots of approvals kept: the 14 full days of history and today.
pub const KEEP_DAYS: u64 = 15;
/// Past days whose best (most approvals) sets a group's room.
const HISTORY_DAYS: u64 = 14;
/// How long a block counts as a strike for the next one.
const STRIKES_LAST: Duration = Duration::from_secs(7 * 86_400);
/// No block lasts longer, however often it comes back.
const LONGEST_BLOCK: Duration = Duration::from_secs(7 * 86_400);

/// What the breaker does with a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// Decide and record (log, metric, event), but let the send go.
    Monitor,
    Enforce,
}

/// A destination group's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Country,
    Prefix,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Country => "country",
            Self::Prefix => "prefix",
        }
    }
}

/// A destination group: `NG` (a country) or `+234803123` (a prefix).
/// Both groups of a phone share its country, where a store keeps them
/// together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group {
    pub level: Level,
    /// The ISO country, or `ZZ` for numbers of no country.
    pub country: String,
    /// The country itself, or the prefix in E.164.
    pub name: String,
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The window a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The current clock hour and the one before (60 to 120 minutes).
    Hour,
    /// The current clock hour and the 23 before.
    Day,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// One hour slot's counts (slot: unix ms / 1 hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HourCount {
    pub slot: u64,
    pub sent: u32,
    pub approved: u32,
}

/// What a store keeps of a group: hour slots, approvals per day slot
/// (unix ms / 1 day) and its block, if it had one lately.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupTraffic {
    pub hours: Vec<HourCount>,
    pub days: Vec<(u64, u32)>,
    pub block: Option<Block>,
}

/// A window's figures, as a decision record shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub window: Window,
    pub sent: u32,
    pub approved: u32,
    /// The most unverified sends the window allows.
    pub threshold: u32,
}

impl Figures {
    pub fn unverified(&self) -> u32 {
        self.sent.saturating_sub(self.approved)
    }
}

/// A block: since and until (unix ms), how many blocks in a row (each
/// within a week of the last) it makes, the figures that tripped it, and
/// whether it refuses sends or only records that it would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub since_ms: u64,
    pub until_ms: u64,
    pub strikes: u32,
    pub figures: Figures,
    pub enforced: bool,
}

impl Block {
    pub fn is_on(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }
}

/// A level's floors: room that needs no history, so a new deployment, or
/// a country it has just opened to, is not blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floors {
    pub hour: u32,
    pub day: u32,
}

/// The breaker's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    pub country: Mode,
    pub prefix: Mode,
    /// Digits a prefix leaves off a number: 3 makes groups of 1,000.
    pub prefix_digits: usize,
    pub country_floors: Floors,
    pub prefix_floors: Floors,
    /// Unverified sends allowed per approval in the window, and per
    /// approval on the group's best day of the last 14.
    pub per_approved: f64,
    /// The first block's length; each one within a week of the last
    /// doubles it.
    pub block_for: Duration,
    /// Numbers and prefixes in E.164 never counted or blocked.
    pub safe: Vec<String>,
    /// The client rule: how many destination countries one client (an
    /// address, or an IPv6 /64) may send to in a day.
    pub clients: Mode,
    pub countries_per_client: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            country: Mode::Enforce,
            prefix: Mode::Enforce,
            prefix_digits: 3,
            country_floors: Floors { hour: 30, day: 100 },
            prefix_floors: Floors { hour: 10, day: 20 },
            per_approved: 1.0,
            block_for: Duration::from_secs(12 * 3_600),
            safe: Vec::new(),
            clients: Mode::Enforce,
            countries_per_client: 3,
        }
    }
}

/// What the breaker says of a send: the blocks it trips (to start and
/// tell, in monitor mode too), and the block that refuses it, if any: a
/// group's, in enforce mode, that does not spare it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    pub trips: Vec<(Group, Block)>,
    pub refusal: Option<(Group, Block)>,
}

impl Breaker {
    pub fn is_off(&self) -> bool {
        self.country == Mode::Off && self.prefix == Mode::Off && self.clients == Mode::Off
    }

    /// Whether a send to the country at `place` in a client's day (its
    /// countries in the order first sent to) is past the client's share. A client
    /// with real users sends to the few countries the app serves; one that
    /// walks the world's prefixes is looking for the ones that pay.
    pub fn too_many_countries(&self, place: u32) -> bool {
        self.clients != Mode::Off && place > self.countries_per_client
    }

    /// Whether `phone` is on the safe list: never counted, never blocked.
    pub fn is_safe(&self, phone: &Phone) -> bool {
        self.safe
            .iter()
            .any(|prefix| phone.as_str().starts_with(prefix.as_str()))
    }

    pub fn mode(&self, level: Level) -> Mode {
        match level {
            Level::Country => self.country,
            Level::Prefix => self.prefix,
        }
    }

    /// The groups a send to `phone` counts for: its country, then its
    /// prefix; none whose rule is off.
    pub fn groups(&self, phone: &Phone) -> Vec<Group> {
        let country = phone.region().unwrap_or("ZZ").to_owned();
        let e164 = phone.as_str();
        // At least a country code's longest (3 digits) and one more, so no
        // prefix spans two countries.
        let keep = e164.len().saturating_sub(self.prefix_digits).max(5);
        let mut groups = Vec::with_capacity(2);
        if self.country != Mode::Off {
            groups.push(Group {
                level: Level::Country,
                country: country.clone(),
                name: country.clone(),
            });
        }
        if self.prefix != Mode::Off {
            groups.push(Group {
                level: Level::Prefix,
                country,
                name: e164[..keep].to_owned(),
            });
        }
        groups
    }

    /// Judges a send that has been counted in `traffic` (one per group of
    /// [`Breaker::groups`], in order) at unix ms `now_ms`. Every group is
    /// judged, whatever another's mode: a group whose block is on refuses
    /// the send if its rule enforces; one with no block on whose figures
    /// pass its room trips a new block. Only a send that goes on, or the
    /// trip that refuses it, records a block: a refused send's counts are
    /// taken back, and concurrent refused sends must not trip anything.
    ///
    /// A prefix whose users approve its codes is real: its country's block
    /// does not stop it, so a stranger who pumps a country blocks only its
    /// other prefixes. "Approve" means converting within its own room: some
    /// approvals in the day or on its best of the last 14, and no more
    /// unverified codes in the day than `per_approved` times that many.
    pub fn judge(&self, groups: &[Group], traffic: &[GroupTraffic], now_ms: u64) -> Verdict {
        let proven = self.proven(groups, traffic, now_ms);
        let spared = |g: &Group| g.level == Level::Country && proven;
        let refuses = |g: &Group| !spared(g) && self.mode(g.level) == Mode::Enforce;
        // A block already on that refuses the send: it goes nowhere, so its
        // counts are no evidence against any other group, and trip nothing.
        for (group, held) in groups.iter().zip(traffic).rev() {
            if let Some(on) = held.block.as_ref().filter(|b| b.is_on(now_ms)) {
                if refuses(group) {
                    return Verdict {
                        trips: Vec::new(),
                        refusal: Some((group.clone(), on.clone())),
                    };
                }
            }
        }
        // The prefix first. The first trip that refuses is the only one
        // kept, for the same reason; trips that let the send go (monitor
        // mode, or a spared prefix's country) are all kept.
        let mut trips = Vec::new();
        for (group, held) in groups.iter().zip(traffic).rev() {
            if held.block.as_ref().is_some_and(|b| b.is_on(now_ms)) {
                continue;
            }
            let Some(figures) = self.trips(group.level, held, now_ms) else {
                continue;
            };
            let block = self.block(held.block.as_ref(), figures, group.level, now_ms);
            if refuses(group) {
                return Verdict {
                    trips: vec![(group.clone(), block.clone())],
                    refusal: Some((group.clone(), block)),
                };
            }
            trips.push((group.clone(), block));
        }
        Verdict { trips, refusal: None }
    }

    /// Per group of a send (in order): whether its block, while on, holds
    /// the send back uncounted. A store then counts no group of the send,
    /// so a flood at a blocked range adds nothing to its country. Only a
    /// prefix's enforced block holds: a country's block may spare the send
    /// (its prefix converts), which must then count.
    pub fn holds(&self, groups: &[Group]) -> Vec<bool> {
        groups
            .iter()
            .map(|g| g.level == Level::Prefix && self.mode(g.level) == Mode::Enforce)
            .collect()
    }

    /// Whether a phone's prefix (of its `groups`, with their `traffic`)
    /// converts within its own room: its users approve their codes, as
    /// the country rule and the money caps' soft limits ask.
    pub fn proven(&self, groups: &[Group], traffic: &[GroupTraffic], now_ms: u64) -> bool {
        groups
            .iter()
            .zip(traffic)
            .any(|(g, held)| g.level == Level::Prefix && self.converts(held, now_ms))
    }

    /// Whether a prefix converts within its own room (see [`Breaker::judge`]).
    fn converts(&self, traffic: &GroupTraffic, now_ms: u64) -> bool {
        let [_, day] = self.figures(Level::Prefix, traffic, now_ms);
        let approvals = day.approved.max(best_day(traffic, now_ms));
        approvals > 0 && day.unverified() <= scale(self.per_approved, approvals)
    }

    /// The window whose unverified sends are over its threshold, if any.
    pub fn trips(&self, level: Level, traffic: &GroupTraffic, now_ms: u64) -> Option<Figures> {
        let [hour, day] = self.figures(level, traffic, now_ms);
        [hour, day].into_iter().find(|f| f.unverified() > f.threshold)
    }

    /// The hour's and the day's figures of a group at `now_ms`.
    ///
    /// Sends and approvals count from the end of the group's last block.
    /// Room (unverified sends allowed) = the greatest of the floor,
    /// `per_approved` x approvals in the window, and `per_approved` x the
    /// approvals of the group's best day of the last 14 (for the hour, a
    /// sixth of the day's room: a day's traffic comes in about 6 busy
    /// hours).
    pub fn figures(&self, level: Level, traffic: &GroupTraffic, now_ms: u64) -> [Figures; 2] {
        let floors = match level {
            Level::Country => self.country_floors,
            Level::Prefix => self.prefix_floors,
        };
        let hour = now_ms / HOUR_MS;
        // Counting starts again where the group's last block ended: what
        // came before it was judged already. (Sends refused during a block
        // were never counted, so the hour it ended holds only later ones.)
        let restart = traffic
            .block
            .as_ref()
            .filter(|b| !b.is_on(now_ms))
            .map_or(0, |b| b.until_ms / HOUR_MS);
        let sum = |from: u64| {
            traffic
                .hours
                .iter()
                .filter(|h| h.slot >= from.max(restart) && h.slot <= hour)
                .fold((0u32, 0u32), |(s, a), h| {
                    (s.saturating_add(h.sent), a.saturating_add(h.approved))
                })
        };
        let best_day = best_day(traffic, now_ms);
        let room = |approved: u32| scale(self.per_approved, approved);
        let (day_sent, day_approved) = sum(hour.saturating_sub(23));
        let day_room = floors.day.max(room(day_approved)).max(room(best_day));
        let (hour_sent, hour_approved) = sum(hour.saturating_sub(1));
        let hour_room = floors.hour.max(room(hour_approved)).max(day_room / 6);
        [
            Figures {
                window: Window::Hour,
                sent: hour_sent,
                approved: hour_approved,
                threshold: hour_room,
            },
            Figures {
                window: Window::Day,
                sent: day_sent,
                approved: day_approved,
                threshold: day_room,
            },
        ]
    }

    /// The block a trip starts: `block_for`, doubled for each block of the
    /// group's that ended within the last week, at most a week.
    fn block(&self, last: Option<&Block>, figures: Figures, level: Level, now_ms: u64) -> Block {
        let strikes = match last {
            Some(last) if last.until_ms + millis(STRIKES_LAST) > now_ms => last.strikes.saturating_add(1),
            _ => 1,
        };
        let factor = 1u32.checked_shl(strikes - 1).unwrap_or(u32::MAX);
        let length = self.block_for.saturating_mul(factor).min(LONGEST_BLOCK);
        Block {
            since_ms: now_ms,
            until_ms: now_ms + millis(length),
            strikes,
            figures,
            enforced: self.mode(level) == Mode::Enforce,
        }
    }
}

/// The most approvals of the group's last 14 full days.
fn best_day(traffic: &GroupTraffic, now_ms: u64) -> u32 {
    let today = now_ms / DAY_MS;
    traffic
        .days
        .iter()
        .filter(|(day, _)| *day < today && *day + HISTORY_DAYS >= today)
        .map(|(_, approved)| *approved)
        .max()
        .unwrap_or(0)
}

fn scale(per: f64, n: u32) -> u32 {
    // Bounded: `per` is checked at start (0 to 100) and n is a u32.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scaled = (per * f64::from(n)).floor().min(f64::from(u32::MAX)) as u32;
    scaled
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Which hour and day slots a store keeps at `now_ms` (those at or after
/// these), so the store drops what no window reads any more.
pub fn kept_from(now_ms: u64) -> (u64, u64) {
    (
        (now_ms / HOUR_MS).saturating_sub(KEEP_HOURS - 1),
        (now_ms / DAY_MS).saturating_sub(KEEP_DAYS - 1),
    )
}

/// The hour and day slot of unix ms `at_ms`.
pub fn slots(at_ms: u64) -> (u64, u64) {
    (at_ms / HOUR_MS, at_ms / DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn phone(raw: &str) -> Phone {
        Phone::parse(raw).unwrap()
    }

    /// A group's traffic: `sent` and `approved` this hour, `best` approved
    /// on a day last week.
    fn traffic(sent: u32, approved: u32, best: u32) -> GroupTraffic {
        GroupTraffic {
            hours: vec![HourCount {
                slot: NOW / HOUR_MS,
                sent,
                approved,
            }],
            days: vec![(NOW / DAY_MS - 3, best)],
            block: None,
        }
    }

    #[test]
    fn a_phone_counts_for_its_country_and_its_1k_prefix() {
        let breaker = Breaker::default();
        let groups = breaker.groups(&phone("+2348031234567"));
        assert_eq!(groups[0].name, "NG");
        assert_eq!(groups[1].name, "+2348031234");
        assert_eq!(groups[1].country, "NG");
        let off = Breaker {
            country: Mode::Off,
            ..Breaker::default()
        };
        assert!(!Breaker::default().too_many_countries(3));
        assert!(Breaker::default().too_many_countries(4));
        assert_eq!(off.groups(&phone("+2348031234567")).len(), 1);
    }

    #[test]
    fn a_new_deployment_allows_each_prefix_its_floor() {
        let breaker = Breaker::default();
        let level = Level::Prefix;
        assert_eq!(breaker.trips(level, &traffic(10, 0, 0), NOW), None);
        let tripped = breaker.trips(level, &traffic(11, 0, 0), NOW).unwrap();
        assert_eq!(
            (tripped.window, tripped.sent, tripped.threshold),
            (Window::Hour, 11, 10)
        );
        // Approvals make room one for one.
        assert_eq!(breaker.trips(level, &traffic(30, 15, 0), NOW), None);
    }

    #[test]
    fn history_makes_room_for_the_country() {
        let breaker = Breaker::default();
        // A new deployment: the floors, 30 an hour and 100 a day.
        let [hour, day] = breaker.figures(Level::Country, &traffic(0, 0, 0), NOW);
        assert_eq!((hour.threshold, day.threshold), (30, 100));
        // 1,200 approved on a day last week: 1,200 unverified a day, 200 an hour.
        let [hour, day] = breaker.figures(Level::Country, &traffic(0, 0, 1_200), NOW);
        assert_eq!((hour.threshold, day.threshold), (200, 1_200));
        assert_eq!(breaker.trips(Level::Country, &traffic(200, 0, 1_200), NOW), None);
        assert!(breaker
            .trips(Level::Country, &traffic(201, 0, 1_200), NOW)
            .is_some());
        // History older than 14 days counts for nothing.
        let mut old = traffic(31, 0, 0);
        old.days = vec![(NOW / DAY_MS - 15, 1_200)];
        assert!(breaker.trips(Level::Country, &old, NOW).is_some());
    }

    #[test]
    fn the_hour_looks_back_one_slot_and_the_day_24() {
        let breaker = Breaker::default();
        let hour = NOW / HOUR_MS;
        let held = GroupTraffic {
            hours: vec![
                HourCount {
                    slot: hour - 24,
                    sent: 500,
                    approved: 0,
                },
                HourCount {
                    slot: hour - 23,
                    sent: 15,
                    approved: 0,
                },
                HourCount {
                    slot: hour - 1,
                    sent: 4,
                    approved: 0,
                },
                HourCount {
                    slot: hour,
                    sent: 2,
                    approved: 1,
                },
            ],
            ..GroupTraffic::default()
        };
        let [h, d] = breaker.figures(Level::Prefix, &held, NOW);
        assert_eq!((h.sent, h.approved), (6, 1));
        assert_eq!((d.sent, d.approved), (21, 1));
        assert_eq!(breaker.trips(Level::Prefix, &held, NOW), None);
    }

    #[test]
    fn blocks_double_while_the_pumping_comes_back() {
        let breaker = Breaker::default();
        let groups = breaker.groups(&phone("+2348031234567"));
        // 11 unverified sends to the prefix in the hour of `at`.
        let pumped = |at: u64, block: Option<Block>| {
            let hours = vec![HourCount {
                slot: at / HOUR_MS,
                sent: 11,
                approved: 0,
            }];
            vec![
                traffic(1, 0, 0),
                GroupTraffic {
                    hours,
                    days: vec![],
                    block,
                },
            ]
        };
        let first = breaker.judge(&groups, &pumped(NOW, None), NOW);
        let (group, block) = first.trips[0].clone();
        assert_eq!(first.refusal, Some((group.clone(), block.clone())));
        assert_eq!(group.level, Level::Prefix);
        assert_eq!((block.strikes, block.until_ms - NOW), (1, 12 * HOUR_MS));
        assert!(block.enforced);
        // While it is on, it refuses, and trips nothing new.
        let during = breaker.judge(&groups, &pumped(NOW + 1, Some(block.clone())), NOW + 1);
        assert!(during.trips.is_empty() && during.refusal.is_some());
        // Once it ends, what the pumping did then no longer trips it...
        let later = block.until_ms + 1;
        let quiet = vec![
            traffic(1, 0, 0),
            GroupTraffic {
                block: Some(block.clone()),
                ..pumped(NOW, None)[1].clone()
            },
        ];
        assert_eq!(breaker.judge(&groups, &quiet, later), Verdict::default());
        // ...but pumping again does, for twice as long.
        let second = trip(&breaker.judge(&groups, &pumped(later, Some(block)), later));
        assert_eq!((second.strikes, second.until_ms - later), (2, 24 * HOUR_MS));
        // A week after a block ends, a trip starts again from the first length.
        let week = second.until_ms + 7 * DAY_MS + 1;
        let fresh = trip(&breaker.judge(&groups, &pumped(week, Some(second.clone())), week));
        assert_eq!(fresh.strikes, 1);
        // However many strikes, a week at most.
        let after = second.until_ms + 1;
        let worn = Block {
            strikes: 40,
            ..second
        };
        let long = trip(&breaker.judge(&groups, &pumped(after, Some(worn)), after));
        assert_eq!((long.strikes, long.until_ms - after), (41, 7 * DAY_MS));
    }

    /// The block of a verdict's one trip.
    fn trip(verdict: &Verdict) -> Block {
        assert_eq!(verdict.trips.len(), 1, "{verdict:?}");
        verdict.trips[0].1.clone()
    }

    #[test]
    fn monitor_records_a_block_that_refuses_nothing() {
        let breaker = Breaker {
            prefix: Mode::Monitor,
            ..Breaker::default()
        };
        let groups = breaker.groups(&phone("+2348031234567"));
        let held = vec![traffic(1, 0, 0), traffic(11, 0, 0)];
        let verdict = breaker.judge(&groups, &held, NOW);
        assert!(!trip(&verdict).enforced);
        assert_eq!(verdict.refusal, None);
    }

    #[test]
    fn each_rule_judges_every_send_whatever_the_others_mode() {
        // The prefix in monitor mode and blocked already; the country,
        // enforced, past its floor: the country still trips and refuses.
        let breaker = Breaker {
            prefix: Mode::Monitor,
            ..Breaker::default()
        };
        let groups = breaker.groups(&phone("+2348031234567"));
        let shadow = trip(&breaker.judge(&groups, &[traffic(1, 0, 0), traffic(11, 0, 0)], NOW));
        let mut held = vec![traffic(31, 0, 0), traffic(31, 0, 0)];
        held[1].block = Some(shadow);
        let verdict = breaker.judge(&groups, &held, NOW + 1);
        assert_eq!(verdict.trips.len(), 1);
        assert_eq!(verdict.refusal.unwrap().0.level, Level::Country);
        // The other way round: the country watched, the prefix enforced.
        let breaker = Breaker {
            country: Mode::Monitor,
            ..Breaker::default()
        };
        let shadow = trip(&breaker.judge(&groups, &[traffic(31, 0, 0), traffic(1, 0, 0)], NOW));
        let mut held = vec![traffic(41, 0, 0), traffic(11, 0, 0)];
        held[0].block = Some(shadow);
        let verdict = breaker.judge(&groups, &held, NOW + 1);
        assert_eq!(verdict.refusal.unwrap().0.level, Level::Prefix);
    }

    #[test]
    fn a_country_block_spares_prefixes_whose_users_approve() {
        let breaker = Breaker::default();
        let groups = breaker.groups(&phone("+2348031234567"));
        // The country pumped past its floor; the prefix quiet.
        let mut held = vec![traffic(31, 0, 0), traffic(1, 0, 0)];
        let verdict = breaker.judge(&groups, &held, NOW);
        let block = trip(&verdict);
        assert_eq!(
            verdict.refusal.unwrap().0.level,
            Level::Country,
            "an unproven prefix"
        );
        // A prefix whose users approve its codes goes on, and the country's
        // block is still started.
        held[1] = traffic(2, 1, 0);
        let verdict = breaker.judge(&groups, &held, NOW);
        assert_eq!((verdict.trips.len(), verdict.refusal), (1, None));
        held[0].block = Some(block);
        assert_eq!(breaker.judge(&groups, &held, NOW + 1), Verdict::default());
        // One approval does not spare a prefix pumped past it: it must
        // convert within its own room (here 1 unverified per approval).
        held[1] = traffic(3, 1, 0);
        assert!(breaker.judge(&groups, &held, NOW + 1).refusal.is_some());
        // Nor does an approval last week, beside this day's pumping.
        held[1] = traffic(5, 0, 1);
        assert!(breaker.judge(&groups, &held, NOW + 1).refusal.is_some());
        held[1] = traffic(1, 0, 1);
        assert_eq!(breaker.judge(&groups, &held, NOW + 1).refusal, None);
    }

    /// A week of sends to one prefix, one every `every_ms`, through the
    /// breaker at the defaults, as a store would count them; the sends that
    /// went out. The figures in docs/behaviour.md ("SMS pumping").
    fn week_of_pumping(breaker: &Breaker, every_ms: u64, history: u32) -> u32 {
        let mut held = vec![GroupTraffic::default(), GroupTraffic::default()];
        // The country's own history: `history` approved on a day last week.
        held[0].days.push((NOW / DAY_MS - 3, history));
        let mut sent = 0;
        let mut n = 0u64;
        let groups = breaker.groups(&phone("+2348031234567"));
        while n * every_ms < 7 * DAY_MS {
            let at = NOW + n * every_ms;
            n += 1;
            for group in &mut held {
                match group.hours.iter_mut().find(|h| h.slot == at / HOUR_MS) {
                    Some(h) => h.sent += 1,
                    None => group.hours.push(HourCount {
                        slot: at / HOUR_MS,
                        sent: 1,
                        approved: 0,
                    }),
                }
            }
            let verdict = breaker.judge(&groups, &held, at);
            for (group, block) in verdict.trips {
                let at = groups.iter().position(|g| *g == group).unwrap();
                held[at].block = Some(block);
            }
            let refused = verdict.refusal.is_some();
            if refused {
                for group in &mut held {
                    if let Some(h) = group.hours.iter_mut().find(|h| h.slot == at / HOUR_MS) {
                        h.sent -= 1;
                    }
                }
            } else {
                sent += 1;
            }
        }
        sent
    }

    #[test]
    fn what_a_week_of_pumping_one_prefix_costs_at_the_defaults() {
        let breaker = Breaker::default();
        // As fast as it can (a send every second): 10 before each block,
        // and blocks of 12, 24, 48 and 96 hours fill the week.
        assert_eq!(week_of_pumping(&breaker, 1_000, 0), 40);
        // With the country's history it is the same: the prefix's floor
        // trips first.
        assert_eq!(week_of_pumping(&breaker, 1_000, 1_200), 40);
        // Slow enough to stay under the prefix's day floor (one send every
        // 72 minutes, 20 a day), never blocked: 140 in a week.
        assert_eq!(week_of_pumping(&breaker, 72 * 60 * 1_000, 0), 140);
    }
}
