//! The store on a real Redis Cluster (three masters, three replicas, started
//! here): the whole store contract, a flow through the service, and a master
//! failing over while the service keeps serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use otpd::adapters::metrics::Metrics;
use otpd::adapters::store::RedisStore;
use otpd::config::StoreUrl;
use otpd::ports::OtpStore;

use crate::helpers::{redis_config, spawn_app, unique_prefix, Reply, TestApp};
use crate::own_redis::{cli, OwnCluster};
use crate::store_contract as contract;

const PHONE: &str = "+14155552671";

fn store(cluster: &OwnCluster) -> Arc<dyn OtpStore> {
    let store = RedisStore::new(
        &cluster.url(),
        &unique_prefix(),
        Duration::from_secs(2),
        4,
        Arc::new(Metrics::new()),
    );
    Arc::new(store.unwrap())
}

/// A request that may meet the cluster mid-failover: 503s are retried.
async fn through_failover<F, Fut>(mut request: F) -> Reply
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = request().await;
        if reply.status != 503 {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "still 503 long after the failover: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn verify(app: &TestApp, code: &str) -> Reply {
    through_failover(|| app.verify(PHONE, code)).await
}

/// Runs each of the contract's tests on a store of its own on `$cluster`.
macro_rules! on_the_cluster {
    ($cluster:expr; $($test:ident),* $(,)?) => {
        $(
            contract::$test(store($cluster)).await;
        )*
    };
}

/// Runs each of the breaker's counting tests on a store of its own.
macro_rules! on_the_traffic_cluster {
    ($cluster:expr; $($test:ident),* $(,)?) => {
        $(
            crate::traffic::$test(store($cluster)).await;
        )*
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_and_a_failover_on_a_real_cluster() {
    let cluster = OwnCluster::start();

    contract::every_contract_test!(on_the_cluster!(&cluster));
    crate::traffic::every_traffic_test!(on_the_traffic_cluster!(&cluster));
    let prefix = unique_prefix();
    let at = || contract::redis_store_at(&cluster.url(), &prefix);
    crate::traffic::a_send_reads_what_other_instances_counted(at(), at(), at()).await;
    contract::client_waits_count_across_codes_and_instances(
        contract::redis_store_at(&cluster.url(), &prefix),
        contract::redis_store_at(&cluster.url(), &prefix),
    )
    .await;

    // Two instances on the cluster share each phone's ceiling.
    let mut config = redis_config();
    config.store.url = StoreUrl(cluster.url());
    config.store.timeout_ms = 1000;
    let config = crate::hardening::guess_budget_only(config);
    let (a, b) = (spawn_app(config.clone()).await, spawn_app(config).await);
    crate::hardening::guesses_across_codes(&a, &b).await;

    // A stranger guessing for a minute never delays the owner's check by id.
    let mut config = redis_config();
    config.store.url = StoreUrl(cluster.url());
    config.store.timeout_ms = 1000;
    let app = spawn_app(crate::stranger::defaults(config)).await;
    crate::stranger::a_stranger_never_delays_the_owner(&app, 60).await;

    // The pumping breaker counts and blocks on the cluster, approvals too.
    let mut config = redis_config();
    config.store.url = StoreUrl(cluster.url());
    config.store.timeout_ms = 1000;
    crate::pumping::a_pumped_prefix_is_blocked_at_its_floor(config.clone()).await;
    config.store.key_prefix = unique_prefix();
    crate::pumping::approvals_make_room_on(config.clone()).await;

    // Workflows: a failed WhatsApp falls back to SMS at once, no report in
    // time moves on, a delivered one stops it.
    config.store.key_prefix = unique_prefix();
    crate::workflows::an_undelivered_whatsapp_moves_to_sms_at_once(config.clone()).await;
    config.store.key_prefix = unique_prefix();
    crate::workflows::no_report_in_time_moves_on(config.clone()).await;
    config.store.key_prefix = unique_prefix();
    crate::workflows::a_delivered_report_stops_the_workflow(config.clone()).await;
    config.store.key_prefix = unique_prefix();
    crate::workflows::a_refused_channel_moves_on_at_once(config.clone()).await;

    // The money caps: a hard cap, and a soft cap that lets known
    // destinations through, with their events.
    config.store.key_prefix = unique_prefix();
    crate::spending::a_hard_cap_refuses_every_send_until_the_day_ends(config.clone()).await;
    config.store.key_prefix = unique_prefix();
    crate::spending::past_a_soft_cap_only_destinations_with_approved_history_go(config).await;

    // Events kept in shard streams spread over the cluster's masters.
    let endpoint = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    let mut config = redis_config();
    config.store.url = StoreUrl(cluster.url());
    config.store.timeout_ms = 1000;
    let app = spawn_app(crate::events::with_events(config, &endpoint, &[1])).await;
    for phone in ["+14155550201", "+14155550202", "+14155550203"] {
        assert_eq!(app.send(phone).await.status, 202);
        let code = app.outbox.last_code(phone);
        assert_eq!(app.verify(phone, &code).await.status, 200);
    }
    let approved = ["verification.approved"; 3];
    let got = crate::events::wait_for(&endpoint, &approved).await;
    assert_eq!(
        got.iter().filter(|p| p["type"] == "verification.created").count(),
        3
    );
    drop(app);

    // The service on the cluster, with every limit on.
    let mut config = redis_config();
    config.store.url = StoreUrl(cluster.url());
    config.store.timeout_ms = 1000;
    config.limits = otpd::config::LimitsConfig::default();
    let key = format!("{}{{{PHONE}}}", config.store.key_prefix);
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.outbox.last_code(PHONE);
    let wrong = crate::helpers::wrong(&code);
    assert_eq!(app.verify(PHONE, &wrong).await.body["attempts_remaining"], 4);

    // The master holding this phone's slot hands over to its replica.
    let (master, replica) = cluster.master_and_replica_of(&key);
    assert!(cli(replica, &["cluster", "failover"]).contains("OK"));
    let started = Instant::now();
    while !(cli(replica, &["role"]).starts_with("master") && cli(master, &["role"]).starts_with("slave")) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the replica never took over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.wait_until_ok();

    // The service follows the redirect: the code, its spent attempt and the
    // cooldown all survived the move.
    let status_path = format!("/v1/otp/{PHONE}");
    let status = through_failover(|| app.get(&status_path)).await;
    assert_eq!(status.body["attempts_remaining"], 4, "{}", status.body);
    through_failover(|| app.send(PHONE))
        .await
        .assert_problem(429, "resend_too_soon");
    assert_eq!(verify(&app, &code).await.status, 200);
    verify(&app, &code).await.assert_problem(404, "not_found");

    // And new codes go on working on the new master.
    assert_eq!(through_failover(|| app.send("+14155552672")).await.status, 202);
    let fresh = app.outbox.last_code("+14155552672");
    assert_eq!(
        through_failover(|| app.verify("+14155552672", &fresh))
            .await
            .status,
        200
    );
}
