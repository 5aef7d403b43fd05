//! `hotline580 purge` and `hotline580 backup`, run as a person would.

mod common;
mod support;

use common::{Backend, TestDb};
use hotline580::store::Db;
use std::process::{Command, Output};
use support::process::{Service, free_port};

const DAY: i64 = 86_400_000;

fn run(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .args(args)
        .env("HOTLINE580__DATABASE__URL", &db.url)
        .env("HOTLINE580__LOG__LEVEL", "warn")
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn exec(db: &Db, sql: String) {
    let sql = sqlx::AssertSqlSafe(sql);
    hotline580::on_db!(db, |c| sqlx::query(sql).execute(c).await.map(|_| ())).unwrap();
}

async fn strings(db: &Db, sql: &'static str) -> Vec<String> {
    hotline580::on_db!(db, |c| sqlx::query_scalar(sql).fetch_all(c).await).unwrap()
}

/// Every column the purge may touch, one text line per row, for before/after comparisons.
async fn snapshot(db: &Db) -> Vec<String> {
    let mut all = Vec::new();
    for sql in [
        "SELECT 'request ' || CAST(id AS TEXT) || '|' || status || '|' || COALESCE(category,'') || '|' || COALESCE(grade,'') \
           || '|' || COALESCE(description,'') || '|' || COALESCE(recording_url,'') || '|' || COALESCE(transcription,'') \
           || '|' || COALESCE(caller_phone,'') || '|' || COALESCE(caller_name,'') || '|' || COALESCE(address,'') \
           || '|' || COALESCE(complaint,'') || '|' || COALESCE(CAST(resident_id AS TEXT),'') || '|' || COALESCE(grid,'') \
           || '|' || COALESCE(CAST(rating AS TEXT),'') || '|' || COALESCE(CAST(lat AS TEXT),'') \
           || '|' || COALESCE(CAST(closed_at AS TEXT),'') || '|' || CAST(created_at AS TEXT) \
           || '|' || COALESCE(CAST(purged_at AS TEXT),'') FROM requests ORDER BY id",
        "SELECT 'call ' || call_sid || '|' || from_phone || '|' || state FROM calls ORDER BY call_sid",
        "SELECT 'step ' || call_sid || '|' || step || '|' || twiml FROM call_steps ORDER BY call_sid, step",
        "SELECT 'outbox ' || CAST(id AS TEXT) || '|' || to_phone || '|' || body || '|' || status FROM outbox ORDER BY id",
        "SELECT 'sim ' || CAST(id AS TEXT) || '|' || to_phone || '|' || body FROM simulated_deliveries ORDER BY id",
        "SELECT 'event ' || CAST(id AS TEXT) || '|' || type || '|' || data FROM events ORDER BY id",
        "SELECT 'message ' || message_sid || '|' || from_phone || '|' || body FROM messages ORDER BY message_sid",
        "SELECT 'resident ' || name || '|' || phone || '|' || address FROM residents ORDER BY id",
    ] {
        all.extend(strings(db, sql).await);
    }
    all
}

/// One request with every kind of personal data, its call, SMS, outbox rows and events.
async fn seed_request(db: &Db, id: i64, status: &str, closed_at: Option<i64>, updated_at: i64) {
    let closed = closed_at.map(|c| c.to_string()).unwrap_or("NULL".into());
    exec(db, format!(
        "INSERT INTO requests (id, status, category, grade, channel, language, description, recording_url, transcription, \
           resident_id, caller_phone, caller_name, address, lat, lon, volunteer_id, rating, complaint, classified_at, \
           closed_at, created_at, updated_at) \
         VALUES ({id}, '{status}', 'repair', 'yellow', 'voice', 'zh', '张大爷家水管漏了 {id}', 'https://api.twilio.com/rec/RE{id}', \
           '水管漏了', 1, '+8613800000001', '张大爷', '解放碑1号', 29.56, 106.57, 1, 4, '来晚了', {t}, {closed}, {t}, {updated_at})",
        t = updated_at - DAY,
    )).await;
    exec(
        db,
        format!(
            "INSERT INTO calls (call_sid, request_id, from_phone, state, created_at, updated_at) \
         VALUES ('CA{id}', {id}, '+8613800000001', '{{\"name\":\"张大爷\"}}', 0, 0)"
        ),
    )
    .await;
    exec(db, format!(
        "INSERT INTO call_steps (call_sid, step, twiml, created_at) VALUES ('CA{id}', 'start', '<Say>张大爷您好</Say>', 0)"
    )).await;
    exec(db, format!(
        "INSERT INTO outbox (id, kind, to_phone, from_phone, body, request_id, status, created_at, updated_at) \
         VALUES ({id}, 'sms', '+8613800000001', '+862363580580', '李明 来帮您 {id}', {id}, 'delivered', 0, 0)"
    )).await;
    exec(db, format!(
        "INSERT INTO simulated_deliveries (outbox_id, kind, to_phone, from_phone, body, sid, at) \
         VALUES ({id}, 'sms', '+8613800000001', '+862363580580', '李明 来帮您 {id}', 'SMsim{id}', 0)"
    )).await;
    exec(db, format!(
        "INSERT INTO events (request_id, type, at, actor, data) VALUES \
         ({id}, 'call.voicemail', 0, 'resident', '{{\"recording_url\":\"https://api.twilio.com/rec/RE{id}\"}}'), \
         ({id}, 'request.status', 0, 'system', '{{\"status\":\"{status}\",\"reason\":\"张大爷不在家\"}}')"
    )).await;
}

async fn purge_removes_personal_data_of_long_closed_requests_only(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let now = hotline580::store::now_ms();
    exec(&db, "INSERT INTO residents (id, name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES (1, '张大爷', '+8613800000001', '解放碑1号', 29.56, 106.57, 'zh', '网格3', 0, 0)".into()).await;
    exec(&db, "INSERT INTO volunteers (id, name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES (1, '李明', '+8613900000001', 29.56, 106.57, 'repair', 'zh', 1, 0, 0)".into()).await;
    seed_request(&db, 1, "closed", Some(now - 200 * DAY), now - 200 * DAY).await; // purged
    seed_request(&db, 2, "closed", Some(now - 10 * DAY), now - 10 * DAY).await; // too recent
    seed_request(&db, 3, "escalated", None, now - 300 * DAY).await; // still open
    seed_request(&db, 4, "cancelled", None, now - 200 * DAY).await; // purged (no closed_at)
    seed_request(&db, 5, "done", Some(now - 190 * DAY), now - 5 * DAY).await; // purged (closed long ago)
    exec(
        &db,
        format!(
            "INSERT INTO messages (message_sid, from_phone, body, received_at) VALUES \
         ('SMold', '+8613800000001', '水管漏了', {}), ('SMnew', '+8613800000001', '又漏了', {})",
            now - 200 * DAY,
            now - DAY
        ),
    )
    .await;
    let before = snapshot(&db).await;

    let o = run(&test_db, &["purge", "--older-than", "180d", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("would purge 3 requests, 3 calls (3 stored IVR steps), 1 messages, 3 outbox rows, 6 events"), "{}", text(&o));
    assert!(text(&o).contains("nothing was written"), "{}", text(&o));
    assert_eq!(snapshot(&db).await, before, "a dry run writes nothing");

    let o = run(&test_db, &["purge", "--older-than", "180d"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("purged 3 requests"), "{}", text(&o));
    let after = snapshot(&db).await;

    // Rows of the recent and the open request, and the residents' register, are untouched.
    let untouched = |s: &String| {
        s.starts_with("request 2|")
            || s.starts_with("request 3|")
            || s.starts_with("call CA2|")
            || s.starts_with("call CA3|")
            || s.starts_with("step CA2|")
            || s.starts_with("step CA3|")
            || s.starts_with("outbox 2|")
            || s.starts_with("outbox 3|")
            || s.starts_with("resident ")
            || s.starts_with("message SMnew|")
    };
    let kept_before: Vec<&String> = before.iter().filter(|s| untouched(s)).collect();
    let kept_after: Vec<&String> = after.iter().filter(|s| untouched(s)).collect();
    assert_eq!(kept_before, kept_after);

    // The purged requests keep their figures and the grid, and lose the rest.
    type Row = (
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<f64>,
        Option<i64>,
    );
    let rows: Vec<Row> =
        hotline580::on_db!(&db, |c| sqlx::query_as(
            "SELECT id, status, category, grade, rating, grid, description, caller_phone, resident_id, \
             COALESCE(recording_url, transcription, caller_name, address, complaint), lat, purged_at \
             FROM requests WHERE id IN (1, 4, 5) ORDER BY id"
        ).fetch_all(c).await).unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r.2.as_deref(), Some("repair"), "{r:?}");
        assert_eq!(r.3.as_deref(), Some("yellow"), "{r:?}");
        assert_eq!(r.4, Some(4), "{r:?}");
        assert_eq!(r.5.as_deref(), Some("网格3"), "{r:?}");
        assert_eq!(
            (&r.6, &r.7, r.8, &r.9, r.10),
            (&None, &None, None, &None, None),
            "{r:?}"
        );
        assert!(r.11.is_some(), "{r:?}");
    }
    let mut purged_text = Vec::new();
    for sql in [
        "SELECT COALESCE(description,'') || COALESCE(recording_url,'') || COALESCE(transcription,'') || COALESCE(caller_phone,'') \
           || COALESCE(caller_name,'') || COALESCE(address,'') || COALESCE(complaint,'') FROM requests WHERE id IN (1, 4, 5)",
        "SELECT from_phone || state FROM calls WHERE request_id IN (1, 4, 5)",
        "SELECT twiml FROM call_steps WHERE call_sid IN ('CA1', 'CA4', 'CA5')",
        "SELECT to_phone || body FROM outbox WHERE request_id IN (1, 4, 5)",
        "SELECT to_phone || body FROM simulated_deliveries WHERE outbox_id IN (1, 4, 5)",
        "SELECT data FROM events WHERE request_id IN (1, 4, 5)",
        "SELECT from_phone || body FROM messages WHERE message_sid = 'SMold'",
    ] {
        purged_text.extend(strings(&db, sql).await);
    }
    let purged_text = purged_text.join("\n");
    for secret in [
        "张大爷",
        "+8613800000001",
        "解放碑",
        "水管",
        "李明",
        "RE1",
        "RE4",
        "RE5",
        "来晚了",
        "不在家",
    ] {
        assert!(
            !purged_text.contains(secret),
            "`{secret}` survived the purge:\n{purged_text}"
        );
    }
    assert!(
        purged_text.contains(r#"{"status":"closed"}"#),
        "status events keep their figures:\n{purged_text}"
    );
    let steps = strings(&db, "SELECT call_sid FROM call_steps ORDER BY call_sid").await;
    assert_eq!(steps, vec!["CA2", "CA3"]);
    let sims = strings(
        &db,
        "SELECT to_phone FROM simulated_deliveries ORDER BY outbox_id",
    )
    .await;
    assert_eq!(sims, vec!["", "+8613800000001", "+8613800000001", "", ""]);

    // A second purge finds nothing left to do.
    let o = run(&test_db, &["purge", "--older-than", "180d"]);
    assert!(text(&o).contains("purged 0 requests"), "{}", text(&o));
    assert!(
        !run(&test_db, &["purge", "--older-than", "soon"])
            .status
            .success()
    );
    db.close().await;
}

on_both_backends!(purge_removes_personal_data_of_long_closed_requests_only);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_the_sqlite_database_while_the_service_writes() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let env: Vec<(String, String)> = vec![
        ("HOTLINE580__DATABASE__URL".into(), test_db.url.clone()),
        (
            "HOTLINE580__TWILIO__VALIDATE_SIGNATURES".into(),
            "false".into(),
        ),
        (
            "HOTLINE580__LIMITS__WEBHOOK_PER_MINUTE".into(),
            "100000".into(),
        ),
        (
            "HOTLINE580__LIMITS__INTAKE_PER_HOUR".into(),
            "100000".into(),
        ),
    ];
    let service = Service::start(&env, free_port()).await;
    let client = reqwest::Client::new();
    let base = service.base_url.clone();
    let sms = move |i: u32| {
        let client = client.clone();
        let url = format!("{base}/twilio/sms");
        async move {
            let r = client
                .post(url)
                .form(&[
                    ("MessageSid", format!("SM{i:08}")),
                    ("From", format!("+86138{i:08}")),
                    ("Body", "水管漏水".to_string()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    for i in 0..20 {
        sms(i).await;
    }
    // Keep writing while the copy is taken.
    let writer = {
        let sms = sms.clone();
        tokio::spawn(async move {
            for i in 1000..1200 {
                sms(i).await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.db");
    let path = file.display().to_string();
    let o = run(&test_db, &["backup", &path]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("backup written"), "{}", text(&o));
    writer.await.unwrap();

    let copy = Db::connect(&format!("sqlite://{path}")).await.unwrap();
    let check: String = hotline580::on_db!(&copy, |c| sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(c)
        .await)
    .unwrap();
    assert_eq!(check, "ok");
    let n: i64 = hotline580::on_db!(&copy, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM requests"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert!(
        (20..=220).contains(&n),
        "the copy holds the requests made before it: {n}"
    );
    let events: i64 = hotline580::on_db!(&copy, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM requests r WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = r.id)"
    ).fetch_one(c).await).unwrap();
    assert_eq!(events, 0, "consistent: no request without its events");
    copy.close().await;

    // An existing file is never overwritten.
    let before = std::fs::metadata(&file).unwrap().len();
    let o = run(&test_db, &["backup", &path]);
    assert!(!o.status.success());
    assert!(text(&o).contains("exists already"), "{}", text(&o));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), before);
}

#[tokio::test]
async fn backup_on_postgresql_points_at_pg_dump() {
    let o = Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .args(["backup", "/tmp/never-written.db"])
        .env(
            "HOTLINE580__DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("pg_dump"), "{}", text(&o));
    assert!(!std::path::Path::new("/tmp/never-written.db").exists());
}
