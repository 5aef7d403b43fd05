//! Open311 GeoReport v2: public, read-only, and never personal.

mod common;
use common::{Backend, TestApp};
use hotline580::on_db;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn seed(app: &TestApp) -> (i64, i64, i64) {
    let resident: i64 = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "INSERT INTO residents (name, phone, address, lat, lon, grid, created_at, updated_at) \
         VALUES ('王秀英', '+8613900000001', '解放碑路5号3单元', 29.563049, 106.551649, '网格3', 0, 0) RETURNING id"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    let mut ids = Vec::new();
    for (status, category) in [
        ("offering", "repair"),
        ("done", "errands"),
        ("cancelled", "companion"),
    ] {
        let id: i64 = on_db!(&app.state.db, |c| sqlx::query_scalar(
            "INSERT INTO requests (status, category, grade, channel, description, resident_id, caller_phone, created_at, updated_at) \
             VALUES ($1, $2, 'yellow', 'voice', '我是王秀英，电话13900000001，水管漏了', $3, '+8613900000001', 1767225600000, 1767225660000) RETURNING id"
        )
        .bind(status)
        .bind(category)
        .bind(resident)
        .fetch_one(c)
        .await)
        .unwrap();
        ids.push(id);
    }
    (ids[0], ids[1], ids[2])
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    // No cookie: Open311 is public.
    let r = reqwest::get(app.url(path)).await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn services_are_our_categories(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = get(&app, "/open311/v2/services.json").await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "repair",
            "errands",
            "escort",
            "companion",
            "other",
            "emergency"
        ]
    );
    assert_eq!(body[0]["metadata"], false);
    assert_eq!(body[0]["type"], "realtime");
}

async fn requests_show_status_category_and_a_rounded_place_but_nothing_personal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (open, done, cancelled) = seed(&app).await;
    let r = reqwest::get(app.url("/open311/v2/requests.json"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    for secret in [
        "王秀英",
        "13900000001",
        "解放碑路",
        "水管",
        "29.563049",
        "106.551649",
    ] {
        assert!(!text.contains(secret), "`{secret}` leaked: {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let list = body.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(
        list[2],
        json!({
            "service_request_id": open.to_string(), "status": "open", "service_code": "repair",
            "service_name": "repair", "requested_datetime": "2026-01-01T00:00:00Z",
            "updated_datetime": "2026-01-01T00:01:00Z", "address": "网格3",
            "lat": 29.563, "long": 106.552,
        })
    );
    let status_of = |id: i64| {
        list.iter()
            .find(|r| r["service_request_id"].as_str() == Some(id.to_string().as_str()))
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of(done), "closed");
    assert_eq!(status_of(cancelled), "closed");

    let (_, only_open) = get(&app, "/open311/v2/requests.json?status=open").await;
    assert_eq!(only_open.as_array().unwrap().len(), 1);
    let (_, repairs) = get(&app, "/open311/v2/requests.json?service_code=errands").await;
    assert_eq!(repairs[0]["service_request_id"], done.to_string());
    let (status, err) = get(&app, "/open311/v2/requests.json?status=pending").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err[0]["code"], 400);
}

async fn one_request_is_a_one_element_array(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (open, _, _) = seed(&app).await;
    let (status, body) = get(&app, &format!("/open311/v2/requests/{open}.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["service_request_id"], open.to_string());
    assert!(body[0].get("description").is_none());
    let (status, body) = get(&app, "/open311/v2/requests/999999.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body[0]["code"], 404);
}

on_both_backends!(
    services_are_our_categories,
    requests_show_status_category_and_a_rounded_place_but_nothing_personal,
    one_request_is_a_one_element_array,
);
