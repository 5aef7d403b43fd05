//! Group commit of new calls (`store::call_intake`) on a real database: a batch
//! stores each call once, answers retries with what they were told, survives
//! one bad call, and the writer task serves many webhooks at once.

mod common;

use common::{Backend, TestDb};
use hotline580::store::Db;
use hotline580::store::call_intake::{CallIntake, NewCall, Recorded, write_together};

async fn database(backend: Backend) -> (TestDb, Db) {
    let test_db = TestDb::new(backend).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    (test_db, db)
}

fn call(sid: &str, from: &str, twiml: &str) -> NewCall {
    NewCall {
        call_sid: sid.to_string(),
        from: from.to_string(),
        caller_phone: Some(from.to_string()),
        resident_id: None,
        language: "zh".into(),
        state: r#"{"seq":1}"#.into(),
        seq: "1".into(),
        twiml: twiml.to_string(),
    }
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    hotline580::on_db!(db, |c| sqlx::query_scalar(sql).fetch_one(c).await).unwrap()
}

async fn a_batch_stores_each_call_once_and_answers_retries(backend: Backend) {
    let (_t, db) = database(backend).await;
    hotline580::on_db!(&db, |c| sqlx::query(
        "INSERT INTO residents (name, phone, address, language, created_at, updated_at) \
         VALUES ('张大爷', '+8613800000001', '解放碑1号', 'zh', 0, 0)"
    )
    .execute(c)
    .await
    .map(|_| ()))
    .unwrap();
    let mut known = call("CA1", "+8613800000001", "<Response>one</Response>");
    known.resident_id = Some(1);
    let b = call("CA2", "+8613800000002", "<Response>two</Response>");
    let retry_in_batch = call("CA1", "+8613800000001", "<Response>other</Response>");
    let first = write_together(&db, &[&known, &b, &retry_in_batch]).await;
    let first: Vec<Recorded> = first.into_iter().map(Result::unwrap).collect();
    let Recorded::New { request_id: r1 } = first[0] else {
        panic!("{first:?}")
    };
    let Recorded::New { request_id: r2 } = first[1] else {
        panic!("{first:?}")
    };
    assert_ne!(r1, r2);
    assert_eq!(
        first[2],
        Recorded::Retried {
            twiml: "<Response>one</Response>".into()
        },
        "the same CallSid twice in one batch: the second hears the first's answer"
    );
    // A later batch: one retry of an earlier call, one new call.
    let c = call("CA3", "+8613800000003", "<Response>three</Response>");
    let second = write_together(&db, &[&b, &c]).await;
    let second: Vec<Recorded> = second.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        second[0],
        Recorded::Retried {
            twiml: "<Response>two</Response>".into()
        }
    );
    let Recorded::New { request_id: r3 } = second[1] else {
        panic!("{second:?}")
    };
    assert!(r3 > r2 && r2 > r1, "ids in arrival order: {r1} {r2} {r3}");

    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM requests").await, 3);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM calls").await, 3);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM call_steps WHERE step IN ('start', '1')"
        )
        .await,
        6,
        "the greeting under both keys"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM events WHERE type = 'request.created' AND actor = 'resident'"
        )
        .await,
        3
    );
    let row: (String, String, String, Option<i64>, Option<String>) =
        hotline580::on_db!(&db, |c| sqlx::query_as(
            "SELECT status, channel, language, resident_id, caller_phone FROM requests WHERE id = $1"
        )
        .bind(r1)
        .fetch_one(c)
        .await)
        .unwrap();
    assert_eq!(
        row,
        (
            "new".into(),
            "voice".into(),
            "zh".into(),
            Some(1),
            Some("+8613800000001".into())
        )
    );
    let linked: (i64, String, String) = hotline580::on_db!(&db, |c| sqlx::query_as(
        "SELECT request_id, from_phone, state FROM calls WHERE call_sid = 'CA2'"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(linked, (r2, "+8613800000002".into(), r#"{"seq":1}"#.into()));
    let event: String = hotline580::on_db!(&db, |c| sqlx::query_scalar(
        "SELECT data FROM events WHERE request_id = $1 AND type = 'request.created'"
    )
    .bind(r3)
    .fetch_one(c)
    .await)
    .unwrap();
    let event: serde_json::Value = serde_json::from_str(&event).unwrap();
    assert_eq!(
        event,
        serde_json::json!({ "channel": "voice", "call_sid": "CA3" })
    );
}

async fn one_bad_call_does_not_sink_its_batch(backend: Backend) {
    let (_t, db) = database(backend).await;
    // The database itself refuses one caller: the batch's transaction fails.
    let refuse: &[&'static str] = match backend {
        Backend::Sqlite => &["CREATE TRIGGER refuse BEFORE INSERT ON requests \
             WHEN NEW.caller_phone = '+8613800000666' BEGIN SELECT RAISE(ABORT, 'refused'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.caller_phone = '+8613800000666' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON requests FOR EACH ROW EXECUTE FUNCTION refuse()",
        ],
    };
    for sql in refuse {
        hotline580::on_db!(&db, |c| sqlx::query(*sql).execute(c).await.map(|_| ())).unwrap();
    }
    let a = call("CAa", "+8613800000001", "<Response>a</Response>");
    let bad = call("CAbad", "+8613800000666", "<Response>bad</Response>");
    let b = call("CAb", "+8613800000002", "<Response>b</Response>");
    let results = write_together(&db, &[&a, &bad, &b]).await;
    assert!(
        matches!(results[0], Ok(Recorded::New { .. })),
        "{results:?}"
    );
    let err = results[1].as_ref().unwrap_err();
    assert!(format!("{err:#}").contains("refused"), "{err:#}");
    assert!(
        matches!(results[2], Ok(Recorded::New { .. })),
        "{results:?}"
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM requests").await, 2);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM calls").await, 2);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM call_steps WHERE call_sid = 'CAbad'"
        )
        .await,
        0,
        "nothing of the refused call"
    );
}

async fn the_writer_serves_many_webhooks_at_once(backend: Backend) {
    let (_t, db) = database(backend).await;
    let intake = CallIntake::start(db.clone());
    // 60 distinct calls, each sent twice at once (a webhook and Twilio's retry).
    let mut tasks = Vec::new();
    for i in 0..120 {
        let intake = intake.clone();
        let sid = format!("CA{:03}", i % 60);
        let twiml = format!("<Response>{i}</Response>");
        tasks.push(tokio::spawn(async move {
            let r = intake
                .record(call(&sid, "+8613800000001", &twiml))
                .await
                .unwrap();
            (sid, twiml, r)
        }));
    }
    let mut answers: std::collections::HashMap<String, Vec<(String, Recorded)>> =
        Default::default();
    for t in tasks {
        let (sid, twiml, r) = t.await.unwrap();
        answers.entry(sid).or_default().push((twiml, r));
    }
    assert_eq!(answers.len(), 60);
    for (sid, pair) in &answers {
        let new: Vec<&(String, Recorded)> = pair
            .iter()
            .filter(|(_, r)| matches!(r, Recorded::New { .. }))
            .collect();
        assert_eq!(new.len(), 1, "{sid}: exactly one request: {pair:?}");
        let told = &new[0].0;
        for (_, r) in pair {
            if let Recorded::Retried { twiml } = r {
                assert_eq!(twiml, told, "{sid}: the retry hears the first answer");
            }
        }
    }
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM requests").await, 60);
    assert_eq!(
        scalar(&db, "SELECT COUNT(DISTINCT request_id) FROM calls").await,
        60
    );
    assert!(
        intake.largest_batch() > 1,
        "webhooks that arrive together are written together (largest batch {})",
        intake.largest_batch()
    );
}

on_both_backends!(
    a_batch_stores_each_call_once_and_answers_retries,
    one_bad_call_does_not_sink_its_batch,
    the_writer_serves_many_webhooks_at_once,
);
