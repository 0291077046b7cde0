//! The pumping breaker's counts (`ports::Traffic`) and the money caps'
//! tallies (`ports::Spending`), the same on every store: what each send
//! and approval adds, taking a send back, blocks kept and listed, spend
//! kept per window, notices told once, and counts that stay exact under
//! concurrent sends.

use std::sync::Arc;
use std::time::Duration;

use otpd::domain::{
    add_within, Block, Breaker, Cap, ClientNet, ClientPrefixes, Figures, Group, GroupTraffic, Ledger, Money,
    Phone, SpendCaps, Window,
};
use otpd::ports::OtpStore;
use otpd::ports::{CountriesNoted, CountryNote, SendToCount};

use crate::helpers::{redis_url, unique_prefix};
use crate::store_contract::{memory_store, redis_store, redis_store_at};

fn groups(phone: &str) -> Vec<Group> {
    Breaker::default().groups(&Phone::parse(phone).unwrap())
}

/// Counts a send for `groups`: the store's ms and what each holds.
async fn count(store: &Arc<dyn OtpStore>, groups: &[Group]) -> (u64, Vec<GroupTraffic>) {
    let counts = store
        .count_send(&SendToCount {
            groups,
            holds: &[],
            country: None,
        })
        .await
        .unwrap();
    assert_eq!(counts.countries, None);
    (counts.at_ms, counts.traffic)
}

/// Notes `country` for `client`'s day, with or without groups.
async fn note(
    store: &Arc<dyn OtpStore>,
    client: ClientNet,
    country: &str,
    groups: &[Group],
) -> CountriesNoted {
    let note = CountryNote {
        client,
        country,
        window: Duration::from_secs(86_400),
    };
    let counts = store
        .count_send(&SendToCount {
            groups,
            holds: &[],
            country: Some(note),
        })
        .await
        .unwrap();
    assert_eq!(counts.traffic.len(), groups.len());
    counts.countries.unwrap()
}

/// Sends and approvals in the hours held, summed.
fn totals(held: &GroupTraffic) -> (u32, u32) {
    held.hours
        .iter()
        .fold((0, 0), |(s, a), h| (s + h.sent, a + h.approved))
}

pub async fn sends_and_approvals_count_for_each_group(store: Arc<dyn OtpStore>) {
    let mine = groups("+2348031234567");
    count(&store, &mine).await;
    store.count_approval(&mine).await.unwrap();
    let (now_ms, held) = count(&store, &mine).await;
    assert_eq!(held.len(), 2);
    for group in &held {
        assert_eq!(totals(group), (2, 1));
        assert_eq!(group.days, vec![(now_ms / 86_400_000, 1)]);
        assert_eq!(group.block, None);
    }
    // Another prefix of the same country counts apart; the country is shared.
    let (_, other) = count(&store, &groups("+2348039999567")).await;
    assert_eq!(totals(&other[0]), (3, 1), "the country");
    assert_eq!(totals(&other[1]), (1, 0), "another prefix");
}

pub async fn a_send_taken_back_is_gone_and_never_below_zero(store: Arc<dyn OtpStore>) {
    let mine = groups("+14155551234");
    let (at_ms, _) = count(&store, &mine).await;
    store.uncount_send(&mine, at_ms).await.unwrap();
    store.uncount_send(&mine, at_ms).await.unwrap();
    let (_, held) = count(&store, &mine).await;
    assert_eq!(totals(&held[1]), (1, 0));
    // Taking back from a group never counted makes nothing.
    let never = groups("+16175551234");
    store.uncount_send(&never, at_ms).await.unwrap();
    assert!(store.blocks(0).await.unwrap().is_empty());
}

pub async fn a_block_is_kept_and_listed_until_it_ends(store: Arc<dyn OtpStore>) {
    let mine = groups("+2348031234567");
    let (now_ms, _) = count(&store, &mine).await;
    let block = Block {
        since_ms: now_ms,
        until_ms: now_ms + 3_600_000,
        strikes: 2,
        figures: Figures {
            window: Window::Hour,
            sent: 11,
            approved: 0,
            threshold: 10,
        },
        enforced: true,
    };
    assert!(store.start_block(&mine[1], &block).await.unwrap());
    let again = Block {
        since_ms: now_ms + 1,
        strikes: 3,
        ..block.clone()
    };
    assert!(!store.start_block(&mine[1], &again).await.unwrap(), "one is on");
    let (_, held) = count(&store, &mine).await;
    assert_eq!(held[1].block.as_ref(), Some(&block), "a send reads the block");
    assert_eq!(held[0].block, None, "the country is not blocked");
    let listed = store.blocks(now_ms).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, mine[1]);
    assert_eq!(totals(&listed[0].1), (2, 0));
    // Ended, it is no longer listed as on, and a send still reads it
    // (its strikes count for the next block).
    let ended = Block {
        until_ms: now_ms,
        ..block
    };
    store.set_block(&mine[1], &ended).await.unwrap();
    assert!(store.blocks(now_ms + 1).await.unwrap().is_empty());
    let (_, held) = count(&store, &mine).await;
    assert_eq!(held[1].block.as_ref(), Some(&ended));
    // An operator's unblock forgets the hours, and keeps the block's
    // record and the history by the day.
    store.count_approval(&mine).await.unwrap();
    store.forget_hours(&mine[1]).await.unwrap();
    let (_, held) = count(&store, &mine).await;
    assert_eq!(totals(&held[1]), (1, 0));
    assert_eq!(held[1].days.len(), 1);
    assert_eq!(held[1].block.as_ref(), Some(&ended));
    assert_eq!(totals(&held[0]), (4, 1), "the country keeps its counts");
}

pub async fn concurrent_sends_each_see_their_own_count(store: Arc<dyn OtpStore>) {
    let mine = groups("+2348031234567");
    let sends = (0..40).map(|_| {
        let (store, mine) = (Arc::clone(&store), mine.clone());
        tokio::spawn(async move { totals(&count(&store, &mine).await.1[1]).0 })
    });
    let mut seen: Vec<u32> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<_>>());
}

pub async fn of_concurrent_trips_one_starts_the_block(store: Arc<dyn OtpStore>) {
    let mine = groups("+2348031234567");
    let (now_ms, _) = count(&store, &mine).await;
    let trips = (0..20).map(|i| {
        let (store, group) = (Arc::clone(&store), mine[1].clone());
        let block = Block {
            since_ms: now_ms + i,
            until_ms: now_ms + 43_200_000 + i,
            strikes: 1,
            figures: Figures {
                window: Window::Hour,
                sent: 11,
                approved: 0,
                threshold: 10,
            },
            enforced: true,
        };
        tokio::spawn(async move { store.start_block(&group, &block).await.unwrap() })
    });
    let started = futures_util::future::join_all(trips)
        .await
        .into_iter()
        .filter(|s| *s.as_ref().unwrap())
        .count();
    assert_eq!(started, 1);
    assert_eq!(store.blocks(now_ms).await.unwrap().len(), 1);
}

pub async fn a_clients_countries_count_once_each_for_its_day(store: Arc<dyn OtpStore>) {
    let client = ClientPrefixes::default().client("203.0.113.7".parse().unwrap());
    let day = Duration::from_secs(86_400);
    let mine = groups("+2348031234567");
    let first = note(&store, client, "NG", &mine).await;
    assert!(first.new && first.place == 1, "{first:?}");
    assert!(first.day_left <= day && first.day_left > day - Duration::from_secs(5));
    let again = note(&store, client, "NG", &mine).await;
    assert!(!again.new && again.place == 1, "{again:?}");
    let second = note(&store, client, "GB", &[]).await;
    assert!(second.new && second.place == 2, "{second:?}");
    let third = note(&store, client, "FR", &[]).await;
    assert!(third.new && third.place == 3, "{third:?}");
    // A country noted again keeps its place.
    let again = note(&store, client, "GB", &[]).await;
    assert!(!again.new && again.place == 2, "{again:?}");
    store.forget_country(client, "GB").await.unwrap();
    let back = note(&store, client, "DE", &[]).await;
    assert!(back.new && back.place == 3, "{back:?}");
    assert_eq!(note(&store, client, "FR", &[]).await.place, 2);
    // Another client has a day of its own; the groups counted each time.
    let other = ClientPrefixes::default().client("2001:db8::1".parse().unwrap());
    assert_eq!(note(&store, other, "NG", &[]).await.place, 1);
    let (_, held) = count(&store, &mine).await;
    assert_eq!(totals(&held[1]), (3, 0));
}

pub async fn a_send_a_prefix_block_holds_counts_nothing(store: Arc<dyn OtpStore>) {
    let mine = groups("+2348031234567");
    let (now_ms, _) = count(&store, &mine).await;
    let block = Block {
        since_ms: now_ms,
        until_ms: now_ms + 3_600_000,
        strikes: 1,
        figures: Figures {
            window: Window::Hour,
            sent: 11,
            approved: 0,
            threshold: 10,
        },
        enforced: true,
    };
    assert!(store.start_block(&mine[1], &block).await.unwrap());
    let holds = [false, true];
    for _ in 0..5 {
        let counts = store
            .count_send(&SendToCount {
                groups: &mine,
                holds: &holds,
                country: None,
            })
            .await
            .unwrap();
        assert!(counts.held);
        assert_eq!(counts.traffic[1].block.as_ref(), Some(&block));
    }
    // Neither the prefix nor its country counted them; a send that no
    // block holds (its hold off) counts.
    let (_, held) = count(&store, &mine).await;
    assert_eq!((totals(&held[0]), totals(&held[1])), ((2, 0), (2, 0)));
}

/// A service-wide and a country ledger for today, each with a cap.
fn ledgers(now_ms: u64) -> Vec<Ledger> {
    let cap = Cap {
        soft: None,
        hard: Money::from_units(1.0),
    };
    SpendCaps {
        day: cap,
        country_month: cap,
        ..SpendCaps::default()
    }
    .ledgers("NG", now_ms)
}

fn unix_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn micros(totals: &[Money]) -> Vec<u64> {
    totals.iter().map(|t| t.micros()).collect()
}

pub async fn spend_adds_within_limits_and_is_taken_back_never_below_zero(store: Arc<dyn OtpStore>) {
    let ledgers = ledgers(unix_ms());
    assert_eq!(ledgers.len(), 2);
    let none = [None, None];
    let spent = store
        .spend(&ledgers, Money::from_micros(300_000), &none)
        .await
        .unwrap();
    assert_eq!(
        (micros(&spent.totals), spent.refused),
        (vec![300_000, 300_000], None)
    );
    let spent = store
        .spend(&ledgers, Money::from_micros(7_900), &none)
        .await
        .unwrap();
    assert_eq!(micros(&spent.totals), [307_900, 307_900]);
    // A ledger the send didn't name is untouched.
    let spent = store
        .spend(&ledgers[1..], Money::from_micros(100), &none[1..])
        .await
        .unwrap();
    assert_eq!(micros(&spent.totals), [308_000]);
    // Past a limit: nothing is added anywhere, and the ledger is named.
    let limits = [None, Some(Money::from_micros(400_000))];
    let refused = store
        .spend(&ledgers, Money::from_micros(100_000), &limits)
        .await
        .unwrap();
    assert_eq!(
        (micros(&refused.totals), refused.refused),
        (vec![307_900, 308_000], Some(1))
    );
    // Up to it is allowed.
    let spent = store
        .spend(&ledgers, Money::from_micros(92_000), &limits)
        .await
        .unwrap();
    assert_eq!(
        (micros(&spent.totals), spent.refused),
        (vec![399_900, 400_000], None)
    );
    store.refund(&ledgers, Money::from_micros(99_900)).await.unwrap();
    store
        .refund(&ledgers, Money::from_micros(1_000_000))
        .await
        .unwrap();
    let spent = store.spend(&ledgers, Money::ZERO, &none).await.unwrap();
    assert_eq!(micros(&spent.totals), [0, 0]);
    assert!(store
        .spend(&[], Money::from_micros(5), &[])
        .await
        .unwrap()
        .totals
        .is_empty());
}

pub async fn a_ledger_ends_with_its_window(store: Arc<dyn OtpStore>) {
    let mut ledger = ledgers(unix_ms()).remove(0);
    ledger.ends_ms = unix_ms() + 300;
    let spend = |ledger: Ledger, micros: u64| {
        let store = Arc::clone(&store);
        async move {
            let spent = store
                .spend(&[ledger], Money::from_micros(micros), &[None])
                .await
                .unwrap();
            spent.totals[0].micros()
        }
    };
    assert_eq!(spend(ledger.clone(), 500).await, 500);
    tokio::time::sleep(Duration::from_millis(450)).await;
    ledger.ends_ms = unix_ms() + 60_000;
    assert_eq!(spend(ledger, 200).await, 200);
}

/// Random spends and refunds with random limits on three ledgers, on the
/// store and on the domain's bounded add (`add_within`), which the memory
/// store applies and `spend.lua` repeats: every answer and total agree.
pub async fn spends_agree_with_the_domain(store: Arc<dyn OtpStore>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(29);
    let now = unix_ms();
    let ledgers: Vec<Ledger> = ["day:a", "day:b", "month:c"]
        .iter()
        .map(|name| Ledger {
            name: (*name).to_owned(),
            ends_ms: now + 600_000,
            ..ledgers(now).remove(0)
        })
        .collect();
    let mut model = [Money::ZERO; 3];
    for step in 0..300 {
        let from = rng.random_range(0..3);
        let to = rng.random_range(from..3) + 1;
        let cost = Money::from_micros(rng.random_range(0..50_000));
        if rng.random_ratio(1, 5) {
            store.refund(&ledgers[from..to], cost).await.unwrap();
            for total in &mut model[from..to] {
                *total = Money::from_micros(total.micros().saturating_sub(cost.micros()));
            }
            continue;
        }
        let limits: Vec<Option<Money>> = (from..to)
            .map(|_| {
                rng.random_ratio(1, 2)
                    .then(|| Money::from_micros(rng.random_range(0..2_000_000)))
            })
            .collect();
        let expected = add_within(&model[from..to], cost, &limits);
        let got = store.spend(&ledgers[from..to], cost, &limits).await.unwrap();
        assert_eq!(got, expected, "step {step}");
        model[from..to].clone_from_slice(&expected.totals);
    }
}

pub async fn concurrent_spends_never_pass_a_limit(store: Arc<dyn OtpStore>) {
    let ledgers = ledgers(unix_ms());
    // Room for 25 sends of 1,000 in the first ledger.
    let limits = [Some(Money::from_micros(25_000)), None];
    let spends = (0..40).map(|_| store.spend(&ledgers, Money::from_micros(1_000), &limits));
    let spent: Vec<_> = futures_util::future::join_all(spends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut went: Vec<u64> = spent
        .iter()
        .filter(|s| s.refused.is_none())
        .map(|s| s.totals[0].micros())
        .collect();
    went.sort_unstable();
    assert_eq!(went, (1..=25).map(|n| n * 1_000).collect::<Vec<_>>());
    assert!(spent
        .iter()
        .filter(|s| s.refused.is_some())
        .all(|s| s.refused == Some(0) && s.totals[0].micros() == 25_000));
}

pub async fn a_notice_is_told_once_in_its_window(store: Arc<dyn OtpStore>) {
    let ends_ms = unix_ms() + 60_000;
    let tries = (0..20).map(|_| store.first_notice("day:20261205:NG:soft", ends_ms));
    let told = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .filter(|first| *first.as_ref().unwrap())
        .count();
    assert_eq!(told, 1);
    assert!(!store.first_notice("day:20261205:NG:soft", ends_ms).await.unwrap());
    assert!(store.first_notice("day:20261205:NG:hard", ends_ms).await.unwrap());
    // A notice whose window ended is told again.
    assert!(store
        .first_notice("day:20261204:soft", unix_ms() + 200)
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(store
        .first_notice("day:20261204:soft", unix_ms() + 60_000)
        .await
        .unwrap());
}

/// Three instances on one store (`a`, `b` and `fresh`, which has read
/// nothing yet): what `a` reads of a group after `b` counted sends and
/// approvals, started a block and forgot a group's hours is what `fresh`
/// reads, but for the send `fresh` adds.
pub async fn a_send_reads_what_other_instances_counted(
    a: Arc<dyn OtpStore>,
    b: Arc<dyn OtpStore>,
    fresh: Arc<dyn OtpStore>,
) {
    let mine = groups("+2348031234567");
    count(&a, &mine).await;
    count(&b, &mine).await;
    count(&b, &mine).await;
    b.count_approval(&mine).await.unwrap();
    let (now_ms, _) = count(&b, &mine).await;
    let block = Block {
        since_ms: now_ms,
        until_ms: now_ms + 3_600_000,
        strikes: 1,
        figures: Figures {
            window: Window::Hour,
            sent: 11,
            approved: 0,
            threshold: 10,
        },
        enforced: false,
    };
    assert!(b.start_block(&mine[1], &block).await.unwrap());
    let (_, seen) = count(&a, &mine).await;
    assert_eq!(totals(&seen[0]), (5, 1));
    assert_eq!(totals(&seen[1]), (5, 1));
    assert_eq!(seen[1].block.as_ref(), Some(&block), "the block another started");
    let (_, fresh_seen) = count(&fresh, &mine).await;
    for (mine, theirs) in seen.iter().zip(&fresh_seen) {
        let mut one_more = mine.clone();
        one_more.hours.last_mut().unwrap().sent += 1;
        assert_eq!(&one_more, theirs);
    }
    // An operator's unblock on another instance: the hours are gone for `a` too.
    b.forget_hours(&mine[1]).await.unwrap();
    let (_, seen) = count(&a, &mine).await;
    assert_eq!(totals(&seen[1]), (1, 0));
    assert_eq!(totals(&seen[0]), (7, 1), "the country keeps its counts");
    assert_eq!(seen[1].days.len(), 1, "and the prefix its history by the day");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_reads_what_other_instances_counted_on_memory() {
    let store = memory_store();
    a_send_reads_what_other_instances_counted(Arc::clone(&store), Arc::clone(&store), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_reads_what_other_instances_counted_on_redis() {
    let prefix = unique_prefix();
    let at = || redis_store_at(&redis_url(), &prefix);
    a_send_reads_what_other_instances_counted(at(), at(), at()).await;
}

/// Every test above, named once (`cluster.rs` runs them on a cluster).
macro_rules! every_traffic_test {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)*;
            sends_and_approvals_count_for_each_group,
            a_send_taken_back_is_gone_and_never_below_zero,
            a_block_is_kept_and_listed_until_it_ends,
            concurrent_sends_each_see_their_own_count,
            of_concurrent_trips_one_starts_the_block,
            a_clients_countries_count_once_each_for_its_day,
            a_send_a_prefix_block_holds_counts_nothing,
            spend_adds_within_limits_and_is_taken_back_never_below_zero,
            a_ledger_ends_with_its_window,
            spends_agree_with_the_domain,
            concurrent_spends_never_pass_a_limit,
            a_notice_is_told_once_in_its_window,
        );
    };
}
pub(crate) use every_traffic_test;

macro_rules! traffic_suite {
    ($adapter:ident, $make:expr; $($test:ident),* $(,)?) => {
        mod $adapter {
            use super::*;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($make).await;
                }
            )*
        }
    };
}

every_traffic_test!(traffic_suite!(memory, memory_store()));
every_traffic_test!(traffic_suite!(redis, redis_store()));
