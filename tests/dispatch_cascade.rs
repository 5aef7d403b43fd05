//! The offer cascade seen from outside: which volunteers are offered and in what
//! order, parallel offers for a red request, ten acceptances racing, a restart between
//! an offer and its expiry, and an inbound SMS delivered twice. The `twilio` provider
//! runs against a fake of its REST API; webhooks are signed.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, TestApp, TestDb, post_signed};
use std::time::Duration;
use support::fake_twilio::FakeTwilio;

const RESIDENT: &str = "+8613800000001";
const WAIT: Duration = Duration::from_secs(30);

fn env(twilio: &FakeTwilio, extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("HOTLINE580__TELEPHONY__PROVIDER".into(), "twilio".into()),
        ("HOTLINE580__TWILIO__ACCOUNT_SID".into(), ACCOUNT_SID.into()),
        ("HOTLINE580__TWILIO__AUTH_TOKEN".into(), AUTH_TOKEN.into()),
        ("HOTLINE580__TWILIO__API_BASE".into(), twilio.base_url()),
        ("HOTLINE580__DISPATCH__QUIET_HOURS".into(), "off".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

async fn spawn_on(db: TestDb, env: &[(String, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_on(db, &pairs).await
}

async fn spawn(
    backend: Backend,
    twilio: &FakeTwilio,
    extra: &[(&'static str, &'static str)],
) -> TestApp {
    let app = spawn_on(TestDb::new(backend).await, &env(twilio, extra)).await;
    exec(&app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
                VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)")
    .await;
    app
}

async fn exec(app: &TestApp, sql: &'static str) {
    hotline580::on_db!(&app.state.db, |c| sqlx::query(sql)
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();
}

/// A volunteer `north_m` metres north of the resident.
async fn volunteer(app: &TestApp, name: &str, phone: &str, north_m: f64, skills: &str) {
    let lat = 29.5600 + north_m / 111_195.0;
    hotline580::on_db!(&app.state.db, |c| sqlx::query(
        "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
         VALUES ($1, $2, $3, 106.5700, $4, 'zh', 1, 0, 0)"
    )
    .bind(name)
    .bind(phone)
    .bind(lat)
    .bind(skills)
    .execute(c)
    .await
    .map(|_| ()))
    .unwrap();
}

async fn sms(app: &TestApp, sid: &str, from: &str, body: &str) -> String {
    let (status, reply) = post_signed(
        app,
        "/twilio/sms",
        &[("MessageSid", sid), ("From", from), ("Body", body)],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply
}

/// A red request for the resident, classified as the IVR classifies one: `offering`,
/// and dispatch started in the same transaction. (No resident-facing path makes a
/// non-emergency request red: operators regrade them.)
async fn red_request(app: &TestApp) -> i64 {
    let mut tx = app.state.db.begin().await.unwrap();
    let id: i64 = hotline580::on_tx!(&mut tx, |c| sqlx::query_scalar(
        "INSERT INTO requests (status, channel, language, resident_id, caller_phone, category, grade, \
         classified_at, created_at, updated_at) \
         SELECT 'offering', 'voice', 'zh', id, phone, 'repair', 'red', 0, 0, 0 FROM residents WHERE phone = $1 \
         RETURNING id"
    )
    .bind(RESIDENT)
    .fetch_one(c)
    .await)
    .unwrap();
    hotline580::dispatch::cascade::start(&app.state.job_deps(), &app.state.jobs, &mut tx, id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn code_for(app: &TestApp, phone: &str) -> String {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT o.code FROM offers o JOIN volunteers v ON v.id = o.volunteer_id \
         WHERE v.phone = $1 ORDER BY o.id DESC LIMIT 1"
    )
    .bind(phone)
    .fetch_one(c)
    .await)
    .unwrap()
}

async fn scalar(app: &TestApp, sql: &'static str) -> i64 {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(sql)
        .fetch_one(c)
        .await)
    .unwrap()
}

async fn offers_by_wave(app: &TestApp) -> Vec<(i64, String, String)> {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_as(
        "SELECT o.wave, v.phone, o.status FROM offers o JOIN volunteers v ON v.id = o.volunteer_id \
         ORDER BY o.id"
    )
    .fetch_all(c)
    .await)
    .unwrap()
}

async fn nearest_with_the_skill_first_then_outwards_wave_by_wave(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    volunteer(&app, "隔壁不会修", "+8613900000009", 50.0, "errands").await;
    volunteer(&app, "第四", "+8613900000004", 3_300.0, "repair").await;
    volunteer(&app, "第二", "+8613900000002", 700.0, "errands;repair").await;
    volunteer(&app, "第一", "+8613900000001", 220.0, "repair").await;
    volunteer(&app, "第三", "+8613900000003", 1_400.0, "repair").await;
    volunteer(&app, "太远", "+8613900000005", 30_000.0, "repair").await;
    // A text from the resident: "the water pipe leaks" is a repair (yellow: one at a time).
    sms(&app, "SMreq1", RESIDENT, "家里水管漏水了").await;
    let order = [
        "+8613900000001",
        "+8613900000002",
        "+8613900000003",
        "+8613900000004",
    ];
    for (i, phone) in order.iter().enumerate() {
        let msgs = twilio.wait_for_messages(i + 1, WAIT).await;
        assert_eq!(msgs.len(), i + 1, "{msgs:?}");
        assert_eq!(&msgs[i].to, phone, "offer {}: {msgs:?}", i + 1);
        let reply = sms(&app, &format!("SMno{i}"), phone, "NO").await;
        assert!(reply.contains("<Message>"), "{reply}");
    }
    // Nobody with the skill is left within the widest radius: the operators are needed.
    let mut escalated = false;
    for _ in 0..100 {
        escalated = scalar(&app, "SELECT COUNT(*) FROM requests WHERE status = 'escalated' AND escalation_reason = 'no_volunteer'").await == 1;
        if escalated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(escalated);
    let offers = offers_by_wave(&app).await;
    let phones: Vec<&str> = offers.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(
        phones, order,
        "never the one without the skill, never out of range"
    );
    let waves: Vec<i64> = offers.iter().map(|(w, _, _)| *w).collect();
    assert_eq!(waves, vec![1, 2, 3, 4]);
    assert!(twilio.messages_to("+8613900000009").is_empty());
    assert!(twilio.messages_to("+8613900000005").is_empty());
}

async fn a_red_request_is_offered_to_three_at_once(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    for (i, m) in [100.0, 300.0, 500.0, 700.0, 900.0].iter().enumerate() {
        let phone = format!("+861390000010{i}");
        volunteer(&app, &format!("v{i}"), &phone, *m, "repair").await;
    }
    red_request(&app).await;
    let msgs = twilio.wait_for_messages(3, WAIT).await;
    let mut to: Vec<String> = msgs.iter().map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        ["+8613900000100", "+8613900000101", "+8613900000102"],
        "the three nearest, at once"
    );
    let offers = offers_by_wave(&app).await;
    assert_eq!(offers.len(), 3, "{offers:?}");
    assert!(offers.iter().all(|(w, _, s)| *w == 1 && s == "pending"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(twilio.messages().len(), 3, "no fourth while three are open");
}

async fn ten_acceptances_at_once_make_exactly_one_assignment(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__DISPATCH__WAVE_SIZES__RED", "[10]")],
    )
    .await;
    let phones: Vec<String> = (0..10).map(|i| format!("+86139000002{i:02}")).collect();
    for (i, p) in phones.iter().enumerate() {
        volunteer(&app, &format!("v{i}"), p, 100.0 + 50.0 * i as f64, "repair").await;
    }
    let id = red_request(&app).await;
    twilio.wait_for_messages(10, WAIT).await;
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM offers WHERE status = 'pending'").await,
        10
    );
    let mut codes = Vec::new();
    for p in &phones {
        codes.push(code_for(&app, p).await);
    }
    let replies =
        futures::future::join_all(phones.iter().zip(&codes).enumerate().map(|(i, (p, code))| {
            let app = &app;
            async move {
                post_signed(
                    app,
                    "/twilio/sms",
                    &[
                        ("MessageSid", &format!("SMrace{i}")),
                        ("From", p),
                        ("Body", &format!("YES {code}")),
                    ],
                )
                .await
            }
        }))
        .await;
    for (status, body) in &replies {
        assert_eq!(*status, 200, "every acceptor gets an answer: {body}");
    }
    let winners: Vec<usize> = replies
        .iter()
        .enumerate()
        .filter(|(_, (_, b))| b.contains("解放碑1号"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{replies:?}");
    let told_taken = replies
        .iter()
        .filter(|(_, b)| b.contains("已有志愿者接单"))
        .count();
    assert_eq!(
        told_taken, 9,
        "everyone else is told it is taken: {replies:?}"
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM offers WHERE status = 'accepted'"
        )
        .await,
        1
    );
    let (status, volunteer): (String, Option<String>) =
        hotline580::on_db!(&app.state.db, |c| sqlx::query_as(
            "SELECT r.status, v.phone FROM requests r LEFT JOIN volunteers v ON v.id = r.volunteer_id WHERE r.id = $1"
        )
        .bind(id)
        .fetch_one(c)
        .await)
        .unwrap();
    assert_eq!(status, "assigned");
    assert_eq!(volunteer.as_deref(), Some(phones[winners[0]].as_str()));
}

async fn an_expiry_survives_a_restart_and_the_next_volunteer_is_offered(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let env = env(
        &twilio,
        &[("HOTLINE580__DISPATCH__OFFER_TIMEOUT_SECS", "3")],
    );
    let app = spawn_on(TestDb::new(backend).await, &env).await;
    exec(&app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
                VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)")
    .await;
    volunteer(&app, "近", "+8613900000301", 200.0, "repair").await;
    volunteer(&app, "远", "+8613900000302", 800.0, "repair").await;
    sms(&app, "SMreq3", RESIDENT, "水龙头坏了").await;
    let first = twilio.wait_for_messages(1, WAIT).await;
    assert_eq!(first[0].to, "+8613900000301");
    // The service stops with the offer open; its expiry is a job in the database.
    let db = app.stop().await;
    assert!(twilio.messages_to("+8613900000302").is_empty());
    let app = spawn_on(db, &env).await;
    let msgs = twilio.wait_for_messages(2, Duration::from_secs(60)).await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[1].to, "+8613900000302");
    let offers = offers_by_wave(&app).await;
    assert_eq!(offers[0].2, "expired", "{offers:?}");
    assert_eq!(offers[1].2, "pending", "{offers:?}");
}

async fn an_inbound_sms_delivered_twice_has_its_effect_once(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    volunteer(&app, "近", "+8613900000401", 200.0, "repair").await;
    let first = sms(&app, "SMdup", RESIDENT, "水管漏水").await;
    let again = sms(&app, "SMdup", RESIDENT, "水管漏水").await;
    assert!(again.contains("<Response/>"), "{again}");
    assert!(!again.contains("<Message>"), "{again} after {first}");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM requests").await, 1);
    twilio.wait_for_messages(1, WAIT).await;
    // A volunteer's OFF delivered twice: one decline, one confirmation.
    let off = sms(&app, "SMoff", "+8613900000401", "OFF").await;
    assert!(off.contains("<Message>"), "{off}");
    let off_again = sms(&app, "SMoff", "+8613900000401", "OFF").await;
    assert!(!off_again.contains("<Message>"), "{off_again}");
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM events WHERE type = 'offer.answered'"
        )
        .await,
        1
    );
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM messages").await, 2);
}

/// `choose` looks in small rings first: its answer must equal the ranking of every
/// volunteer in the full radius.
async fn choosing_in_rings_equals_ranking_everyone(backend: Backend) {
    use hotline580::dispatch::matching::{Candidate, Need, rank};
    use hotline580::domain::{Category, GeoPoint, Grade, Language};
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    let centre = GeoPoint::new(29.5600, 106.5700).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut all = Vec::new();
    for i in 0..400i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lat = 29.5600 + ((x % 6_000) as f64 - 3_000.0) / 111_195.0;
        let lon = 106.5700 + (((x >> 16) % 6_000) as f64 - 3_000.0) / 96_800.0;
        let skills = if x >> 40 & 1 == 0 {
            "repair"
        } else {
            "errands"
        };
        let languages = if x >> 41 & 3 == 0 { "en" } else { "zh" };
        let last = (x >> 43 & 1 == 1).then_some((x >> 44 & 0xFFF) as i64);
        let id: i64 = hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
            "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, last_offered_at, quiet_hours, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, 'off', 0, 0) RETURNING id"
        )
        .bind(format!("v{i}"))
        .bind(format!("+86139{:08}", 5_000 + i))
        .bind(lat)
        .bind(lon)
        .bind(skills)
        .bind(languages)
        .bind(last)
        .fetch_one(c)
        .await)
        .unwrap();
        all.push(Candidate {
            id,
            position: GeoPoint::new(lat, lon).unwrap(),
            skills: vec![skills.parse().unwrap()],
            languages: vec![languages.parse().unwrap()],
            available: true,
            opted_out: false,
            active_jobs: 0,
            max_active: 1,
            quiet_hours: None,
            last_offered_at: last,
            already_offered: false,
        });
    }
    for radius_m in [300.0, 1_000.0, 2_000.0, 5_000.0] {
        for size in [1usize, 3, 10, 50] {
            let need = Need {
                category: Category::Repair,
                grade: Grade::Yellow,
                position: centre,
                language: Language::Zh,
                radius_m,
                local_time: jiff::civil::Time::constant(12, 0, 0, 0),
            };
            let mut tx = app.state.db.begin().await.unwrap();
            let got: Vec<i64> =
                hotline580::dispatch::cascade::choose(&mut tx, 0, &need, None, size)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(v, _)| v.id)
                    .collect();
            tx.rollback().await.unwrap();
            let want: Vec<i64> = rank(&need, &all, size)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            assert_eq!(got, want, "radius {radius_m} size {size}");
        }
    }
}

on_both_backends!(
    nearest_with_the_skill_first_then_outwards_wave_by_wave,
    a_red_request_is_offered_to_three_at_once,
    ten_acceptances_at_once_make_exactly_one_assignment,
    an_expiry_survives_a_restart_and_the_next_volunteer_is_offered,
    an_inbound_sms_delivered_twice_has_its_effect_once,
    choosing_in_rings_equals_ranking_everyone,
);
