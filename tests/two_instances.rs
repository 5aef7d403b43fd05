//! Two instances of the real binary on one PostgreSQL, sharing a fake Twilio:
//! one is killed with SIGKILL right after the first offer goes out; the
//! cascade completes on the other, no offer is sent twice, and the request is
//! assigned once. PostgreSQL only (prints SKIP without
//! `HOTLINE580_TEST_POSTGRES_URL`).

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, PUBLIC_URL, TestDb};
use hotline580::store::Db;
use std::collections::HashMap;
use std::time::Duration;
use support::fake_twilio::FakeTwilio;
use support::process::{Service, free_port};
use support::webhook::post_signed;

const RESIDENT: &str = "+8613800000001";
const V1: &str = "+8613900000001";
const V2: &str = "+8613900000002";
const V3: &str = "+8613900000003";

pub fn service_env(db: &TestDb, twilio: &FakeTwilio) -> Vec<(String, String)> {
    [
        ("HOTLINE580__DATABASE__URL", db.url.as_str()),
        ("HOTLINE580__SERVER__PUBLIC_URL", PUBLIC_URL),
        ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
        ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
        ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
        ("HOTLINE580__TWILIO__API_BASE", &twilio.base_url()),
        ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
        ("HOTLINE580__DISPATCH__OFFER_TIMEOUT_SECS", "5"),
        ("HOTLINE580__JOBS__LEASE_SECS", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn exec(db: &Db, sql: &'static str) {
    hotline580::on_db!(db, |c| sqlx::query(sql).execute(c).await.map(|_| ())).unwrap();
}

async fn offer_code(db: &Db, phone: &str) -> String {
    hotline580::on_db!(db, |c| sqlx::query_scalar(
        "SELECT o.code FROM offers o JOIN volunteers v ON v.id = o.volunteer_id WHERE v.phone = $1"
    )
    .bind(phone)
    .fetch_one(c)
    .await)
    .unwrap()
}

async fn wait_until_sent(db: &Db, n: i64) {
    for _ in 0..300 {
        let sent: i64 = hotline580::on_db!(db, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('sent', 'delivered')"
        )
        .fetch_one(c)
        .await)
        .unwrap();
        if sent >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the first offer was never recorded as sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_completes_when_one_of_two_instances_is_killed_after_the_first_offer() {
    if !common::postgres_available("two_instances") {
        return;
    }
    let test_db = TestDb::new(Backend::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    exec(&db, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)").await;
    // Three volunteers with the skill, nearest first; one wave each (yellow: [1, 1, 1, 3]).
    exec(&db, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) VALUES \
               ('一号', '+8613900000001', 29.5601, 106.5701, 'repair', 'zh', 1, 0, 0), \
               ('二号', '+8613900000002', 29.5650, 106.5750, 'repair', 'zh', 1, 0, 0), \
               ('三号', '+8613900000003', 29.5700, 106.5800, 'repair', 'zh', 1, 0, 0)").await;

    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let env = service_env(&test_db, &twilio);
    let mut a = Service::start(&env, free_port()).await;
    let client = reqwest::Client::new();
    let send = |base: String, sid: &'static str, from: &'static str, body: String| {
        let client = client.clone();
        async move {
            post_signed(
                &client,
                &base,
                PUBLIC_URL,
                AUTH_TOKEN,
                "/twilio/sms",
                &[("MessageSid", sid), ("From", from), ("Body", &body)],
            )
            .await
        }
    };

    // The resident texts instance A, the only one running: A makes the first
    // offer, sends it and holds its expiry job (and the queue's leadership).
    let r = send(a.base_url.clone(), "SMin1", RESIDENT, "水管漏水了".into()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let first = twilio.wait_for_messages(1, Duration::from_secs(30)).await;
    assert_eq!(first[0].to, V1, "{first:?}");
    // Once the send is on record (a kill between the provider's answer and
    // that record is the at-least-once case, flagged `maybe_duplicate`; the
    // crash test counts those), B joins and A dies without a goodbye.
    wait_until_sent(&db, 1).await;
    let b = Service::start(&env, free_port()).await;
    a.kill();

    // V1 never answers: its offer expires on B, which offers V2; V2 declines
    // (through B), B offers V3, who accepts.
    let msgs = twilio.wait_for_messages(2, Duration::from_secs(60)).await;
    assert_eq!(msgs[1].to, V2, "{msgs:?}");
    let r = send(
        b.base_url.clone(),
        "SMv2",
        V2,
        format!("NO {}", offer_code(&db, V2).await),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let msgs = twilio.wait_for_messages(3, Duration::from_secs(60)).await;
    assert_eq!(msgs[2].to, V3, "{msgs:?}");
    let r = send(
        b.base_url.clone(),
        "SMv3",
        V3,
        format!("YES {}", offer_code(&db, V3).await),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("解放碑1号"),
        "the winner gets the details: {r:?}"
    );
    // The resident is told who is coming.
    let msgs = twilio.wait_for_messages(4, Duration::from_secs(60)).await;
    assert!(msgs.iter().any(|m| m.to == RESIDENT), "{msgs:?}");

    // Let anything still queued settle, then check the books.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let msgs = twilio.messages();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for m in &msgs {
        *seen.entry((m.to.clone(), m.body.clone())).or_default() += 1;
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "no SMS was sent twice: {msgs:#?}"
    );
    let offers: Vec<(String, String)> = hotline580::on_db!(&db, |c| sqlx::query_as(
        "SELECT v.phone, o.status FROM offers o JOIN volunteers v ON v.id = o.volunteer_id ORDER BY o.id"
    )
    .fetch_all(c)
    .await)
    .unwrap();
    assert_eq!(
        offers,
        vec![
            (V1.to_string(), "expired".to_string()),
            (V2.to_string(), "declined".to_string()),
            (V3.to_string(), "accepted".to_string()),
        ]
    );
    for phone in [V1, V2, V3] {
        assert_eq!(
            twilio.messages_to(phone).len(),
            1,
            "one offer SMS to {phone}"
        );
    }
    let (status, assigned_events): (String, i64) = hotline580::on_db!(&db, |c| sqlx::query_as(
        "SELECT r.status, (SELECT COUNT(*) FROM events e WHERE e.request_id = r.id AND e.type = 'request.status' \
         AND e.data LIKE '%\"assigned\"%') FROM requests r"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!((status.as_str(), assigned_events), ("assigned", 1));
    let unsent: i64 = hotline580::on_db!(&db, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE status NOT IN ('sent', 'delivered')"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(unsent, 0, "every outbox row went out");
    let flagged: i64 = hotline580::on_db!(&db, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE maybe_duplicate"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(flagged, 0, "no send was in doubt");
    drop(b);
    db.close().await;
}
