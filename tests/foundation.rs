//! The service starts on either database, answers health checks, and keeps its data.

mod common;
use common::{Backend, TestApp, TestDb};

async fn health_endpoints_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

async fn readyz_fails_when_the_database_is_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.state.db.close().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn migrations_apply_twice_without_harm(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = hotline580::store::Db::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
}

on_both_backends!(
    health_endpoints_answer,
    readyz_fails_when_the_database_is_gone,
    migrations_apply_twice_without_harm
);
