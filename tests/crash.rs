//! The crash test: the real binary driven by a few hundred scripted requests
//! (signed resident SMS) and volunteer replies, killed with SIGKILL at seeded
//! moments (some while a webhook is in flight) and restarted; every webhook
//! that got no answer is posted again with the same `MessageSid`, as Twilio
//! retries. At the end: every request in a legal final state, at most one
//! accepted offer per request, every outbox row sent, and duplicate sends
//! counted (all flagged `maybe_duplicate`) and below 1%.
//!
//! `HOTLINE580_CRASH_REQUESTS` (default 300) and `HOTLINE580_CRASH_SEED`
//! (default 580) change the run; the summary line names both.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, PUBLIC_URL, TestDb};
use hotline580::store::Db;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};
use support::fake_twilio::FakeTwilio;
use support::process::{Service, free_port};
use support::webhook::try_post_signed;

const VOLUNTEERS: usize = 40;
const KILLS: usize = 8;

/// A small seeded generator (xorshift*): the same seed, the same script.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Driver {
    env: Vec<(String, String)>,
    service: Service,
    client: reqwest::Client,
    rng: Rng,
    kill_at: BTreeSet<u64>,
    posts: u64,
    kills: u64,
    retries: u64,
}

impl Driver {
    async fn restart(&mut self) {
        self.service.kill();
        self.service = Service::start(&self.env, free_port()).await;
    }

    /// Posts one webhook until it is answered 200; at a seeded post, the
    /// service is killed while (or just after) the webhook is in flight.
    async fn sms(&mut self, sid: String, from: &str, body: String) -> String {
        let params = vec![
            ("MessageSid".to_string(), sid),
            ("From".to_string(), from.to_string()),
            ("Body".to_string(), body),
        ];
        self.posts += 1;
        if self.kill_at.contains(&self.posts) {
            let delay = Duration::from_millis(self.rng.below(30));
            let (client, base) = (self.client.clone(), self.service.base_url.clone());
            let p = params.clone();
            let inflight = tokio::spawn(async move {
                try_post_signed(&client, &base, PUBLIC_URL, AUTH_TOKEN, "/twilio/sms", &p).await
            });
            tokio::time::sleep(delay).await;
            self.service.kill();
            self.kills += 1;
            let _ = inflight.await;
            self.service = Service::start(&self.env, free_port()).await;
            self.retries += 1; // the answer may be lost: post again, as Twilio does
        }
        loop {
            match try_post_signed(
                &self.client,
                &self.service.base_url,
                PUBLIC_URL,
                AUTH_TOKEN,
                "/twilio/sms",
                &params,
            )
            .await
            {
                Ok(a) if a.status == 200 => return a.body,
                Ok(a) => panic!("webhook answered {}: {}", a.status, a.body),
                Err(_) => {
                    self.retries += 1;
                    if !self.service.is_running() {
                        self.restart().await;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn rows<T>(db: &Db, sql: &'static str) -> Vec<T>
where
    T: Send + Unpin,
    for<'r> T:
        sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    hotline580::on_db!(db, |c| sqlx::query_as::<_, T>(sql).fetch_all(c).await).unwrap()
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    hotline580::on_db!(db, |c| sqlx::query_scalar(sql).fetch_one(c).await).unwrap()
}

async fn crash_test(backend: Backend) {
    let requests = env_or("HOTLINE580_CRASH_REQUESTS", 300);
    let seed = env_or("HOTLINE580_CRASH_SEED", 580);
    let started = Instant::now();
    let test_db = TestDb::new(backend).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    // One resident per request (so every notification is a distinct SMS), and
    // volunteers with every skill who may hold many jobs.
    let mut tx = db.begin().await.unwrap();
    for i in 0..requests {
        let (lat, lon) = (
            29.50 + (i % 20) as f64 * 0.002,
            106.50 + (i / 20) as f64 * 0.002,
        );
        hotline580::on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'zh', 'g1', 0, 0)"
        )
        .bind(format!("居民{i}"))
        .bind(format!("+86138{i:08}"))
        .bind(format!("路{i}号"))
        .bind(lat)
        .bind(lon)
        .execute(c)
        .await
        .map(|_| ()))
        .unwrap();
    }
    for i in 0..VOLUNTEERS {
        let (lat, lon) = (
            29.50 + (i % 8) as f64 * 0.005,
            106.50 + (i / 8) as f64 * 0.008,
        );
        hotline580::on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'repair;errands;escort;companion;other', 'zh', 1000, 0, 0)"
        )
        .bind(format!("志愿者{i}"))
        .bind(format!("+86139{i:08}"))
        .bind(lat)
        .bind(lon)
        .execute(c)
        .await
        .map(|_| ()))
        .unwrap();
    }
    tx.commit().await.unwrap();

    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let env: Vec<(String, String)> = [
        ("HOTLINE580__DATABASE__URL", test_db.url.as_str()),
        ("HOTLINE580__SERVER__PUBLIC_URL", PUBLIC_URL),
        ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
        ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
        ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
        ("HOTLINE580__TWILIO__API_BASE", &twilio.base_url()),
        ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
        ("HOTLINE580__DISPATCH__OFFER_TIMEOUT_SECS", "600"),
        ("HOTLINE580__JOBS__LEASE_SECS", "2"),
        ("HOTLINE580__LIMITS__WEBHOOK_PER_MINUTE", "1000000"),
        ("HOTLINE580__LIMITS__INTAKE_PER_HOUR", "1000000"),
        ("HOTLINE580__LOG__LEVEL", "error"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // Kill points among the webhooks: intake and replies (about 2.5 per request).
    let mut kill_at = BTreeSet::new();
    while kill_at.len() < KILLS {
        kill_at.insert(1 + rng.below(requests * 2));
    }
    let mut d = Driver {
        service: Service::start(&env, free_port()).await,
        env,
        client: reqwest::Client::new(),
        rng,
        kill_at,
        posts: 0,
        kills: 0,
        retries: 0,
    };

    // Intake: one SMS per resident.
    let texts = [
        "家里水管漏水了",
        "帮我买菜",
        "陪我去医院复诊",
        "灯坏了请来修",
    ];
    for i in 0..requests {
        let body = format!("{} {i}", texts[(i % 4) as usize]);
        d.sms(format!("SMin{i:06}"), &format!("+86138{i:08}"), body)
            .await;
    }

    // Replies: answer every pending offer (mostly YES, some NO), then DONE
    // for about half of the jobs, until no request is still being offered.
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut answered: BTreeSet<String> = BTreeSet::new();
    let mut done_sent: BTreeSet<String> = BTreeSet::new();
    loop {
        let pending: Vec<(String, String)> = rows(
            &db,
            "SELECT o.code, v.phone FROM offers o JOIN volunteers v ON v.id = o.volunteer_id \
             WHERE o.status = 'pending' ORDER BY o.id",
        )
        .await;
        let assigned: Vec<(String, String)> = rows(
            &db,
            "SELECT o.code, v.phone FROM offers o JOIN volunteers v ON v.id = o.volunteer_id \
             JOIN requests r ON r.id = o.request_id WHERE o.status = 'accepted' AND r.status = 'assigned' ORDER BY o.id",
        )
        .await;
        let offering = count(
            &db,
            "SELECT COUNT(*) FROM requests WHERE status IN ('new', 'offering')",
        )
        .await;
        let mut acted = false;
        for (code, phone) in pending {
            if answered.insert(code.clone()) {
                let word = if d.rng.below(10) < 8 { "YES" } else { "NO" };
                d.sms(format!("SMa{code}"), &phone, format!("{word} {code}"))
                    .await;
                acted = true;
            }
        }
        for (code, phone) in assigned {
            if done_sent.insert(code.clone()) && d.rng.below(2) == 0 {
                d.sms(format!("SMd{code}"), &phone, format!("DONE {code}"))
                    .await;
                acted = true;
            }
        }
        if offering == 0 && !acted {
            break;
        }
        if Instant::now() > deadline {
            break; // the invariants below report what is stuck
        }
        if !acted {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Let the sends settle: every outbox row sent (or given up as failed).
    let settle = Instant::now() + Duration::from_secs(60);
    while count(
        &db,
        "SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')",
    )
    .await
        > 0
        && Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.service.kill();

    // The invariants.
    let mut violations: Vec<String> = Vec::new();
    let mut checked = 0;
    let mut check = |ok: bool, what: String| {
        checked += 1;
        if !ok {
            violations.push(what);
        }
    };
    let n_requests = count(&db, "SELECT COUNT(*) FROM requests").await;
    check(
        n_requests == requests as i64,
        format!("{n_requests} requests for {requests} intake SMS (each MessageSid once)"),
    );
    /// id, status, escalation reason, volunteer, accepted offers, pending offers.
    type State = (i64, String, Option<String>, Option<i64>, i64, i64);
    let states: Vec<State> = rows(
        &db,
        "SELECT r.id, r.status, r.escalation_reason, r.volunteer_id, \
         (SELECT COUNT(*) FROM offers o WHERE o.request_id = r.id AND o.status = 'accepted'), \
         (SELECT COUNT(*) FROM offers o WHERE o.request_id = r.id AND o.status = 'pending') \
         FROM requests r ORDER BY r.id",
    )
    .await;
    let mut illegal = Vec::new();
    for (id, status, reason, volunteer, accepted, pending) in &states {
        let legal = match status.as_str() {
            "assigned" | "done" => *accepted == 1 && volunteer.is_some() && *pending == 0,
            "escalated" => reason.is_some() && *accepted == 0 && *pending == 0,
            _ => false, // new or offering with nobody left to answer: stuck
        };
        if !legal {
            illegal.push(format!(
                "#{id} {status} reason={reason:?} accepted={accepted} pending={pending}"
            ));
        }
    }
    check(
        illegal.is_empty(),
        format!("requests not in a legal final state: {illegal:?}"),
    );
    let double = count(
        &db,
        "SELECT COUNT(*) FROM (SELECT request_id FROM offers WHERE status = 'accepted' \
         GROUP BY request_id HAVING COUNT(*) > 1) t",
    )
    .await;
    check(
        double == 0,
        format!("{double} requests with two accepted offers"),
    );
    let unsent = count(
        &db,
        "SELECT COUNT(*) FROM outbox WHERE status NOT IN ('sent', 'delivered')",
    )
    .await;
    check(unsent == 0, format!("{unsent} outbox rows not sent"));
    let outbox_rows = count(&db, "SELECT COUNT(*) FROM outbox").await;
    let flagged = count(&db, "SELECT COUNT(*) FROM outbox WHERE maybe_duplicate").await;
    // The fake's record: an SMS received twice is a duplicate; each must be flagged.
    let msgs = twilio.messages();
    let mut seen: HashMap<(String, String), i64> = HashMap::new();
    for m in &msgs {
        *seen.entry((m.to.clone(), m.body.clone())).or_default() += 1;
    }
    let duplicates: i64 = seen.values().map(|n| n - 1).sum();
    check(
        duplicates <= flagged,
        format!("{duplicates} duplicate SMS but only {flagged} rows flagged maybe_duplicate"),
    );
    check(
        msgs.len() as i64 == outbox_rows + duplicates,
        format!(
            "the provider got {} SMS for {outbox_rows} outbox rows and {duplicates} duplicates",
            msgs.len()
        ),
    );
    let rate = duplicates as f64 / outbox_rows.max(1) as f64;
    check(
        rate < 0.01,
        format!("duplicate rate {:.2}% is not below 1%", rate * 100.0),
    );
    let per_status: Vec<(String, i64)> = rows(
        &db,
        "SELECT status, COUNT(*) FROM requests GROUP BY status ORDER BY status",
    )
    .await;

    let _ = writeln!(
        std::io::stderr(),
        "crash test ({backend:?}, seed {seed}): {requests} requests driven, {} webhooks ({} re-posted), \
         {} kills (SIGKILL) and restarts, {checked} invariants checked, {} violations; \
         {outbox_rows} outbox rows, {duplicates} duplicate sends ({:.2}%), {flagged} flagged maybe_duplicate; \
         final states {per_status:?}; {:.0} s",
        d.posts,
        d.retries,
        d.kills,
        violations.len(),
        rate * 100.0,
        started.elapsed().as_secs_f64(),
    );
    assert!(d.kills as usize == KILLS, "{} kills of {KILLS}", d.kills);
    assert!(violations.is_empty(), "violations: {violations:#?}");
    db.close().await;
}

on_both_backends!(crash_test);
