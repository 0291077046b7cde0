//! What bounds guessing beyond each code's own attempts: the phone's
//! ceiling of wrong codes per window, whoever sends them, and each client's
//! waits between wrong codes by phone, which fall on the guesser alone.

use std::time::Duration;

/// A client's waits: its wrong guesses by phone past `free` in a row each
/// make it wait before its next guess by phone: `first_delay`, doubling
/// each time, up to `max_delay`. After `max_consecutive` in a row, none is
/// heard from it until the count is forgotten, `memory` after its last
/// wrong guess; its own right code clears it. Guesses by id never wait:
/// their verification's reserved attempts bound them, and a client shared
/// by the owner (the app's own server) must not slow the owner down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessBudget {
    pub free: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// 0: no budget; each code's own attempts are the only limit.
    pub max_consecutive: u32,
    pub memory: Duration,
}

/// What a phone's wrong guesses in a row allow next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextGuess {
    Now,
    After(Duration),
    /// Not until an approval or an operator clears the count.
    Blocked,
}

impl GuessBudget {
    pub const OFF: GuessBudget = GuessBudget {
        free: 0,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        max_consecutive: 0,
        memory: Duration::ZERO,
    };

    pub fn is_off(&self) -> bool {
        self.max_consecutive == 0
    }

    /// After `fails` wrong guesses in a row. The stores apply the same rule
    /// (the Redis script `verify.lua` in its own words); the differential
    /// test holds them to it.
    pub fn after(&self, fails: u32) -> NextGuess {
        if self.is_off() {
            return NextGuess::Now;
        }
        if fails >= self.max_consecutive {
            return NextGuess::Blocked;
        }
        if fails < self.free {
            return NextGuess::Now;
        }
        let doublings = (fails - self.free).min(63);
        let delay = self
            .first_delay
            .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay);
        NextGuess::After(delay.min(self.max_delay))
    }
}

/// A client's wrong guesses by phone in a row, as a store keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientGuesses {
    pub in_a_row: u32,
    /// Unix ms before which none of its guesses by phone is heard; 0: none.
    pub wait_until_ms: u64,
    /// Unix ms the count is forgotten.
    pub forget_at_ms: u64,
}

impl ClientGuesses {
    /// How long a client with these wrong guesses must wait before its
    /// next guess by phone is heard; `None`: not at all.
    pub fn wait(held: Option<&Self>, budget: &GuessBudget, now: u64) -> Option<Duration> {
        let held = held.filter(|h| h.forget_at_ms > now && !budget.is_off())?;
        if budget.after(held.in_a_row) == NextGuess::Blocked {
            return Some(Duration::from_millis(held.forget_at_ms - now));
        }
        (held.wait_until_ms > now).then(|| Duration::from_millis(held.wait_until_ms - now))
    }

    /// The count after one more wrong guess by phone at `now`.
    pub fn after_wrong(held: Option<&Self>, budget: &GuessBudget, now: u64) -> Self {
        let in_a_row = held.filter(|h| h.forget_at_ms > now).map_or(0, |h| h.in_a_row) + 1;
        let wait_until_ms = match budget.after(in_a_row) {
            NextGuess::After(delay) => now + super::rules::millis(delay),
            NextGuess::Now | NextGuess::Blocked => 0,
        };
        Self {
            in_a_row,
            wait_until_ms,
            forget_at_ms: now + super::rules::millis(budget.memory),
        }
    }
}

/// At most `limit` wrong codes answered as wrong per phone per `window`,
/// across every client and path: what bounds distributed guessing. A new
/// verification reserves its attempts from it, so the ceiling never takes
/// away attempts a verification was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessCeiling {
    /// 0: no ceiling.
    pub limit: u32,
    pub window: Duration,
}

impl GuessCeiling {
    pub const OFF: GuessCeiling = GuessCeiling {
        limit: 0,
        window: Duration::ZERO,
    };

    pub fn is_off(&self) -> bool {
        self.limit == 0 || self.window.is_zero()
    }
}

impl Default for GuessCeiling {
    fn default() -> Self {
        Self::OFF
    }
}

impl Default for GuessBudget {
    fn default() -> Self {
        Self::OFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: GuessBudget = GuessBudget {
        free: 10,
        first_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(3600),
        max_consecutive: 100,
        memory: Duration::from_secs(86_400),
    };

    #[test]
    fn free_guesses_then_doubling_delays_then_a_block() {
        assert_eq!(DEFAULTS.after(0), NextGuess::Now);
        assert_eq!(DEFAULTS.after(9), NextGuess::Now);
        assert_eq!(DEFAULTS.after(10), NextGuess::After(Duration::from_secs(30)));
        assert_eq!(DEFAULTS.after(11), NextGuess::After(Duration::from_secs(60)));
        assert_eq!(DEFAULTS.after(16), NextGuess::After(Duration::from_secs(1920)));
        assert_eq!(DEFAULTS.after(17), NextGuess::After(Duration::from_secs(3600)));
        assert_eq!(DEFAULTS.after(99), NextGuess::After(Duration::from_secs(3600)));
        assert_eq!(DEFAULTS.after(100), NextGuess::Blocked);
        assert_eq!(GuessBudget::OFF.after(1_000), NextGuess::Now);
    }

    /// The figures of `docs/behaviour.md`, "Security model", from the
    /// default ceiling: what a distributed guesser can get per phone and
    /// year, with one live code per guess and with the most resends leave.
    #[test]
    fn the_ceiling_bounds_a_distributed_guesser_per_phone_and_year() {
        let ceiling = GuessCeiling {
            limit: 20,
            window: Duration::from_secs(3600),
        };
        // A window opens at a wrong code and lasts an hour: at most one an
        // hour, 8,760 a year, each with at most `limit` wrong codes.
        let windows = 365 * 86_400 / ceiling.window.as_secs();
        let guesses = windows * u64::from(ceiling.limit);
        assert_eq!(guesses, 175_200);
        let chance = |live_codes: f64| 1.0 - (1.0 - live_codes * 1e-6).powf(guesses as f64);
        assert_eq!((chance(1.0) * 1000.0).round() / 10.0, 16.1);
        assert_eq!((chance(5.0) * 1000.0).round() / 10.0, 58.4);
        // With `limits.wrong_codes_per_phone = 5`, a quarter of it.
        let quarter = 1.0 - (1.0 - 1e-6_f64).powf((windows * 5) as f64);
        assert_eq!((quarter * 1000.0).round() / 10.0, 4.3);
    }

    /// How long a stranger at one address takes to make 15 wrong codes by
    /// phone (the ceiling's room beside the owner's reserved 5), following
    /// the client waits: the time after which checks by phone of the phone
    /// wait for the window. Checks by id never wait.
    #[test]
    fn one_address_fills_the_room_by_phone_in_930_seconds() {
        let mut at = 0;
        for fails in 1..15 {
            if let NextGuess::After(d) = DEFAULTS.after(fails) {
                at += d.as_secs();
            }
        }
        assert_eq!(at, 30 + 60 + 120 + 240 + 480);
    }

    /// The most wrong codes by phone one client can make in any hour.
    #[test]
    fn the_defaults_allow_at_most_16_wrong_guesses_in_any_hour() {
        // The fastest a guesser can go: each guess the moment it is allowed.
        let mut times = vec![0u64];
        for fails in 1..DEFAULTS.max_consecutive {
            let wait = match DEFAULTS.after(fails) {
                NextGuess::Now => 0,
                NextGuess::After(d) => d.as_secs(),
                NextGuess::Blocked => unreachable!(),
            };
            times.push(times.last().unwrap() + wait);
        }
        assert_eq!(DEFAULTS.after(100), NextGuess::Blocked);
        let most_in_an_hour = times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| (*start..*start + 3600).contains(t))
                    .count()
            })
            .max()
            .unwrap();
        assert_eq!(most_in_an_hour, 16);
        let hours_to_100 = times.last().unwrap() / 3600;
        assert_eq!(
            hours_to_100, 84,
            "the 100th wrong guess comes after about 3.5 days"
        );
    }
}
