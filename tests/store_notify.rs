//! On PostgreSQL a committed transaction announces its newest event with one
//! `NOTIFY hotline580_events` (the live streams read every event after it); a
//! rolled-back one announces nothing.

mod common;

use common::{Backend, TestDb};
use hotline580::store::{Db, EventInput, append_event};
use std::time::Duration;

async fn two_events(db: &Db) -> (hotline580::store::Tx, i64) {
    let mut tx = db.begin().await.unwrap();
    let mut newest = 0;
    for kind in ["alert", "request.updated"] {
        newest = append_event(
            &mut tx,
            EventInput {
                request_id: None,
                kind,
                actor: "system",
                data: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    }
    (tx, newest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_announces_its_newest_event_once_and_a_rollback_nothing() {
    if !common::postgres_available(
        "a_commit_announces_its_newest_event_once_and_a_rollback_nothing",
    ) {
        return;
    }
    let test_db = TestDb::new(Backend::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&test_db.url)
        .await
        .unwrap();
    listener.listen("hotline580_events").await.unwrap();

    let (tx, _) = two_events(&db).await;
    tx.rollback().await.unwrap();
    let (tx, newest) = two_events(&db).await;
    tx.commit().await.unwrap();

    let first = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(first.payload(), newest.to_string(), "the newest event's id");
    let more = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(
        more.is_err(),
        "one notification per transaction, none for the rollback: {:?}",
        more.map(|n| n.map(|n| n.payload().to_string()))
    );
    db.close().await;
}
