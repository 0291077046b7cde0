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

impl GroupTraffic {
    /// Whether the group has had an approval in the day window or on any
    /// of its last 14 days.
    pub fn has_approvals(&self, now_ms: u64) -> bool {
        let (hour, today) = (now_ms / HOUR_MS, now_ms / DAY_MS);
        self.hours.iter().any(|h| h.approved > 0 && h.slot + 23 >= hour)
            || self
                .days
                .iter()
                .any(|(d, n)| *n > 0 && *d + HISTORY_DAYS >= today)
    }
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

/// What the breaker says of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The group was already blocked.
    Blocked {
        group: Group,
        block: Block,
    },
    /// This send tripped a new block; `spared`, the send itself goes on
    /// (its prefix has real users).
    Tripped {
        group: Group,
        block: Block,
        spared: bool,
    },
}

impl Breaker {
    pub fn is_off(&self) -> bool {
        self.country == Mode::Off && self.prefix == Mode::Off && self.clients == Mode::Off
    }

    /// Whether a client that has sent to `countries` distinct countries in
    /// its day, this send's included, has gone past its share. A client
    /// with real users sends to the few countries the app serves; one that
    /// walks the world's prefixes is looking for the ones that pay.
    pub fn too_many_countries(&self, countries: u32) -> bool {
        self.clients != Mode::Off && countries > self.countries_per_client
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
        let keep = e164.len().saturating_sub(self.prefix_digits).max(2);
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
    /// [`Breaker::groups`], in order) at unix ms `now_ms`: the first group
    /// already blocked, or the first whose figures trip a rule, or a pass.
    ///
    /// A prefix with approvals of its own (in the day, or on any of the last
    /// 14) has real users: its country's block does not stop it, so a
    /// stranger who pumps a country blocks only its unproven prefixes. The
    /// country's trip is still kept and told (`spared`).
    pub fn judge(&self, groups: &[Group], traffic: &[GroupTraffic], now_ms: u64) -> Verdict {
        let proven = groups
            .iter()
            .zip(traffic)
            .any(|(g, held)| g.level == Level::Prefix && held.has_approvals(now_ms));
        let spared = |g: &Group| g.level == Level::Country && proven;
        for (group, held) in groups.iter().zip(traffic) {
            if let Some(block) = held.block.as_ref().filter(|b| b.is_on(now_ms) && !spared(group)) {
                return Verdict::Blocked {
                    group: group.clone(),
                    block: block.clone(),
                };
            }
        }
        let mut spared_trip = None;
        for (group, held) in groups.iter().zip(traffic) {
            if held.block.as_ref().is_some_and(|b| b.is_on(now_ms)) {
                continue;
            }
            if let Some(figures) = self.trips(group.level, held, now_ms) {
                let block = self.block(held.block.as_ref(), figures, group.level, now_ms);
                let trip = Verdict::Tripped {
                    group: group.clone(),
                    block,
                    spared: spared(group),
                };
                if !spared(group) {
                    return trip;
                }
                spared_trip.get_or_insert(trip);
            }
        }
        spared_trip.unwrap_or(Verdict::Pass)
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
        let today = now_ms / DAY_MS;
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
        let best_day = traffic
            .days
            .iter()
            .filter(|(day, _)| *day < today && *day + HISTORY_DAYS >= today)
            .map(|(_, approved)| *approved)
            .max()
            .unwrap_or(0);
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
        let Verdict::Tripped { group, block, .. } = breaker.judge(&groups, &pumped(NOW, None), NOW) else {
            panic!("no trip")
        };
        assert_eq!(group.level, Level::Prefix);
        assert_eq!((block.strikes, block.until_ms - NOW), (1, 12 * HOUR_MS));
        assert!(block.enforced);
        let during = pumped(NOW + 1, Some(block.clone()));
        assert!(matches!(
            breaker.judge(&groups, &during, NOW + 1),
            Verdict::Blocked { .. }
        ));
        // Once it ends, what the pumping did then no longer trips it...
        let later = block.until_ms + 1;
        let quiet = vec![
            traffic(1, 0, 0),
            GroupTraffic {
                block: Some(block.clone()),
                ..pumped(NOW, None)[1].clone()
            },
        ];
        assert_eq!(breaker.judge(&groups, &quiet, later), Verdict::Pass);
        // ...but pumping again does, for twice as long.
        let Verdict::Tripped { block: second, .. } =
            breaker.judge(&groups, &pumped(later, Some(block)), later)
        else {
            panic!("no second trip")
        };
        assert_eq!((second.strikes, second.until_ms - later), (2, 24 * HOUR_MS));
        // A week after a block ends, a trip starts again from the first length.
        let week = second.until_ms + 7 * DAY_MS + 1;
        let Verdict::Tripped { block: fresh, .. } =
            breaker.judge(&groups, &pumped(week, Some(second.clone())), week)
        else {
            panic!("no trip a week on")
        };
        assert_eq!(fresh.strikes, 1);
        // However many strikes, a week at most.
        let after = second.until_ms + 1;
        let worn = Block {
            strikes: 40,
            ..second
        };
        let Verdict::Tripped { block: long, .. } = breaker.judge(&groups, &pumped(after, Some(worn)), after)
        else {
            panic!("no trip")
        };
        assert_eq!((long.strikes, long.until_ms - after), (41, 7 * DAY_MS));
    }

    #[test]
    fn monitor_records_a_block_that_refuses_nothing() {
        let breaker = Breaker {
            prefix: Mode::Monitor,
            ..Breaker::default()
        };
        let groups = breaker.groups(&phone("+2348031234567"));
        let held = vec![traffic(1, 0, 0), traffic(11, 0, 0)];
        let Verdict::Tripped { block, .. } = breaker.judge(&groups, &held, NOW) else {
            panic!("no trip")
        };
        assert!(!block.enforced);
    }

    #[test]
    fn a_country_block_spares_prefixes_with_real_users() {
        let breaker = Breaker::default();
        let groups = breaker.groups(&phone("+2348031234567"));
        // The country pumped past its floor; the prefix quiet.
        let mut held = vec![traffic(101, 0, 0), traffic(1, 0, 0)];
        let Verdict::Tripped { group, block, spared } = breaker.judge(&groups, &held, NOW) else {
            panic!("no trip")
        };
        assert_eq!(
            (group.level, spared),
            (Level::Country, false),
            "an unproven prefix"
        );
        // A prefix whose users approved a code last week goes on, and the
        // country's block is still started.
        held[1].days.push((NOW / DAY_MS - 5, 1));
        assert!(matches!(
            breaker.judge(&groups, &held, NOW),
            Verdict::Tripped { spared: true, .. }
        ));
        held[0].block = Some(block);
        assert_eq!(breaker.judge(&groups, &held, NOW + 1), Verdict::Pass);
        // Its own floor still holds it.
        held[1].hours[0].sent = 11;
        assert!(matches!(
            breaker.judge(&groups, &held, NOW + 1),
            Verdict::Tripped { spared: false, .. }
        ));
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
            let refused = match breaker.judge(&groups, &held, at) {
                Verdict::Pass => false,
                Verdict::Blocked { .. } => true,
                Verdict::Tripped { group, block, .. } => {
                    let at = groups.iter().position(|g| *g == group).unwrap();
                    held[at].block = Some(block);
                    true
                }
            };
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
