//! The operators' JSON API, spoken to as the console would: logins and
//! sessions, and reading requests and volunteers, on both databases.

mod common;
use common::{Backend, TestApp};
use hotline580::domain::Role;
use hotline580::on_db;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

async fn app_with_operator(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    hotline580::auth::create_operator(&app.state.db, "alice", PASSWORD, Role::Operator)
        .await
        .expect("operator created");
    app
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("request sent")
}

async fn logged_in(backend: Backend) -> TestApp {
    let app = app_with_operator(backend).await;
    let r = login(&app, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    app
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.expect("a JSON body")
}

// ---- rows written directly, as the rest of the service would ----

async fn resident(app: &TestApp, name: &str, phone: &str, address: &str) -> i64 {
    on_db!(&app.state.db, |c| {
        sqlx::query_scalar(
            "INSERT INTO residents (name, phone, address, created_at, updated_at) VALUES ($1, $2, $3, 0, 0) RETURNING id",
        )
        .bind(name)
        .bind(phone)
        .bind(address)
        .fetch_one(c)
        .await
    })
    .unwrap()
}

async fn volunteer(app: &TestApp, name: &str, phone: &str, skills: &str, points: i64) -> i64 {
    on_db!(&app.state.db, |c| {
        sqlx::query_scalar(
            "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, points, created_at, updated_at) \
             VALUES ($1, $2, 29.56, 106.55, $3, 'zh;en', 2, $4, 0, 0) RETURNING id",
        )
        .bind(name)
        .bind(phone)
        .bind(skills)
        .bind(points)
        .fetch_one(c)
        .await
    })
    .unwrap()
}

async fn request(
    app: &TestApp,
    status: &str,
    resident_id: Option<i64>,
    volunteer_id: Option<i64>,
    created_at: i64,
) -> i64 {
    on_db!(&app.state.db, |c| {
        sqlx::query_scalar(
            "INSERT INTO requests (status, category, grade, channel, description, resident_id, caller_phone, volunteer_id, created_at, updated_at) \
             VALUES ($1, 'repair', 'yellow', 'voice', 'a leaking tap', $2, '+8613800138000', $3, $4, $4) RETURNING id",
        )
        .bind(status)
        .bind(resident_id)
        .bind(volunteer_id)
        .bind(created_at)
        .fetch_one(c)
        .await
    })
    .unwrap()
}

async fn offer(
    app: &TestApp,
    request_id: i64,
    volunteer_id: i64,
    code: &str,
    status: &str,
    sent_at: i64,
    answered_at: Option<i64>,
) {
    on_db!(&app.state.db, |c| {
        sqlx::query(
            "INSERT INTO offers (request_id, volunteer_id, wave, code, status, sent_at, expires_at, answered_at) \
             VALUES ($1, $2, 1, $3, $4, $5, $5 + 180000, $6)",
        )
        .bind(request_id)
        .bind(volunteer_id)
        .bind(code)
        .bind(status)
        .bind(sent_at)
        .bind(answered_at)
        .execute(c)
        .await
        .map(|_| ())
    })
    .unwrap();
}

async fn event(app: &TestApp, request_id: i64, kind: &str, at: i64, data: &str) {
    on_db!(&app.state.db, |c| {
        sqlx::query(
            "INSERT INTO events (request_id, type, at, actor, data) VALUES ($1, $2, $3, 'system', $4)",
        )
        .bind(request_id)
        .bind(kind)
        .bind(at)
        .bind(data)
        .execute(c)
        .await
        .map(|_| ())
    })
    .unwrap();
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

// ---- logins and sessions ----

async fn every_api_route_answers_401_json_without_a_login(backend: Backend) {
    let app = app_with_operator(backend).await;
    for path in [
        "/api/requests",
        "/api/requests/1",
        "/api/volunteers",
        "/api/requests/1/candidates",
        "/api/events",
        "/api/openapi.json",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            json_of(r).await,
            json!({ "error": "log in first" }),
            "{path}"
        );
    }
    let r = app
        .client
        .post(app.url("/api/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await, json!({ "error": "log in first" }));
    for action in ["assign", "cancel", "reoffer", "notes", "close"] {
        let r = post_json(&app, &format!("/api/requests/1/{action}"), json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{action}");
    }
    for path in ["/api/requests/1", "/api/volunteers/1"] {
        let r = app
            .client
            .patch(app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

async fn a_wrong_password_and_an_unknown_user_get_the_same_401(backend: Backend) {
    let app = app_with_operator(backend).await;
    let wrong = login(&app, "alice", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let wrong = json_of(wrong).await;
    let unknown = login(&app, "mallory", PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown = json_of(unknown).await;
    assert_eq!(wrong, json!({ "error": "wrong username or password" }));
    assert_eq!(wrong, unknown);
    assert_eq!(
        app.get("/api/requests").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn a_login_sets_an_http_only_strict_session_cookie(backend: Backend) {
    let app = app_with_operator(backend).await;
    let r = login(&app, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("hotline580_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    // The test service's public URL is plain http.
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(
        json_of(r).await,
        json!({ "username": "alice", "role": "operator" })
    );
    assert_eq!(app.get("/api/requests").await.status(), StatusCode::OK);
}

async fn logging_out_ends_the_session(backend: Backend) {
    let app = logged_in(backend).await;
    let r = app
        .client
        .post(app.url("/api/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/requests").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let rows: i64 = on_db!(&app.state.db, |c| {
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(c)
            .await
    })
    .unwrap();
    assert_eq!(rows, 0, "the session's row is gone");
}

async fn a_stolen_cookie_is_worthless_after_logout(backend: Backend) {
    let app = app_with_operator(backend).await;
    let r = login(&app, "alice", PASSWORD).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = app
        .client
        .post(app.url("/api/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // A client without a cookie jar replaying the old cookie.
    let r = reqwest::Client::new()
        .get(app.url("/api/requests"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn a_form_encoded_login_is_refused_with_415(backend: Backend) {
    let app = app_with_operator(backend).await;
    let r = app
        .client
        .post(app.url("/api/login"))
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body = json_of(r).await;
    assert!(
        body["error"].as_str().unwrap().contains("application/json"),
        "{body}"
    );
    assert_eq!(
        app.get("/api/requests").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn too_many_failed_logins_are_refused_with_429(backend: Backend) {
    let app = app_with_operator(backend).await;
    for _ in 0..5 {
        let r = login(&app, "alice", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now.
    let r = login(&app, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = json_of(r).await;
    assert_eq!(
        body,
        json!({ "error": "too many failed logins; wait 15 minutes" })
    );
    // Another login is not held back by alice's.
    hotline580::auth::create_operator(&app.state.db, "bob", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let r = login(&app, "bob", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["role"], "admin");
}

// ---- reading ----

async fn requests_are_listed_newest_first_in_the_contracts_shape(backend: Backend) {
    let app = logged_in(backend).await;
    let wang = resident(&app, "王秀英", "+8613900000001", "5 Jiefang Rd").await;
    let first = request(&app, "offering", Some(wang), None, T0).await;
    let second = request(&app, "escalated", None, None, T0 + 60_000).await;
    let third = request(&app, "offering", None, None, T0 + 120_000).await;

    let r = app.get("/api/requests").await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = json_of(r).await;
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![third, second, first]);
    assert_eq!(
        list[2],
        json!({
            "id": first, "status": "offering", "category": "repair", "grade": "yellow",
            "channel": "voice", "description": "a leaking tap", "recording_url": null,
            "resident": { "id": wang, "name": "王秀英", "phone": "+8613900000001", "address": "5 Jiefang Rd" },
            "caller_phone": "+8613800138000", "volunteer_id": null, "rating": null,
            "escalation_reason": null, "lat": null, "lon": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        })
    );
    assert_eq!(list[0]["resident"], Value::Null);

    let offering = json_of(app.get("/api/requests?status=offering").await).await;
    let ids: Vec<i64> = offering
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![third, first]);

    let limited = json_of(app.get("/api/requests?limit=2").await).await;
    assert_eq!(limited.as_array().unwrap().len(), 2);
    assert_eq!(limited[0]["id"], third);
}

async fn an_unknown_status_or_a_bad_limit_is_a_400_that_says_what_to_use(backend: Backend) {
    let app = logged_in(backend).await;
    let r = app.get("/api/requests?status=open").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let msg = json_of(r).await["error"].as_str().unwrap().to_string();
    for word in [
        "open",
        "new",
        "offering",
        "assigned",
        "done",
        "closed",
        "escalated",
        "cancelled",
    ] {
        assert!(msg.contains(word), "{msg}");
    }
    let r = app.get("/api/requests?limit=many").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(r).await["error"].is_string());
}

async fn one_request_shows_its_offers_and_events_oldest_first(backend: Backend) {
    let app = logged_in(backend).await;
    let li = volunteer(&app, "Li Wei", "+8613700000001", "repair", 0).await;
    let zhao = volunteer(&app, "Zhao", "+8613700000002", "repair", 0).await;
    let id = request(&app, "assigned", None, Some(zhao), T0).await;
    offer(&app, id, li, "K7", "declined", T0 + 1_000, Some(T0 + 5_000)).await;
    offer(
        &app,
        id,
        zhao,
        "Q4",
        "accepted",
        T0 + 2_000,
        Some(T0 + 9_000),
    )
    .await;
    event(&app, id, "request.created", T0, r#"{"channel":"voice"}"#).await;
    event(&app, id, "offer.sent", T0 + 1_000, r#"{"code":"K7"}"#).await;
    event(
        &app,
        id,
        "offer.answered",
        T0 + 9_000,
        r#"{"accepted":true}"#,
    )
    .await;

    let r = app.get(&format!("/api/requests/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "assigned");
    assert_eq!(body["volunteer_id"], zhao);
    assert_eq!(
        body["offers"],
        json!([
            { "code": "K7", "volunteer_id": li, "volunteer_name": "Li Wei", "wave": 1,
              "status": "declined", "sent_at": "2026-01-01T00:00:01Z", "answered_at": "2026-01-01T00:00:05Z" },
            { "code": "Q4", "volunteer_id": zhao, "volunteer_name": "Zhao", "wave": 1,
              "status": "accepted", "sent_at": "2026-01-01T00:00:02Z", "answered_at": "2026-01-01T00:00:09Z" },
        ])
    );
    let events = body["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["request.created", "offer.sent", "offer.answered"]
    );
    assert_eq!(events[0]["at"], "2026-01-01T00:00:00Z");
    assert_eq!(events[0]["actor"], "system");
    assert_eq!(events[0]["data"], json!({ "channel": "voice" }));
    assert!(events[0]["id"].as_i64().unwrap() < events[1]["id"].as_i64().unwrap());

    let r = app.get("/api/requests/999999").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(json_of(r).await["error"].is_string());
    let r = app.get("/api/requests/abc").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(r).await["error"].is_string());
}

async fn volunteers_are_listed_with_their_active_jobs(backend: Backend) {
    let app = logged_in(backend).await;
    let li = volunteer(&app, "Li Wei", "+8613700000001", "repair;errands", 12).await;
    let zhao = volunteer(&app, "Zhao", "+8613700000002", "companion", 0).await;
    request(&app, "assigned", None, Some(li), T0).await;
    request(&app, "assigned", None, Some(li), T0 + 1).await;
    request(&app, "done", None, Some(li), T0 + 2).await;
    request(&app, "done", None, Some(zhao), T0 + 3).await;

    let r = app.get("/api/volunteers").await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = json_of(r).await;
    assert_eq!(
        list,
        json!([
            { "id": li, "name": "Li Wei", "phone": "+8613700000001", "lat": 29.56, "lon": 106.55,
              "skills": ["repair", "errands"], "languages": ["zh", "en"], "available": true,
              "opted_out": false, "max_active": 2, "active_jobs": 2, "points": 12 },
            { "id": zhao, "name": "Zhao", "phone": "+8613700000002", "lat": 29.56, "lon": 106.55,
              "skills": ["companion"], "languages": ["zh", "en"], "available": true,
              "opted_out": false, "max_active": 2, "active_jobs": 0, "points": 0 },
        ])
    );
}

async fn an_expired_session_row_is_not_loaded(backend: Backend) {
    use hotline580::http::session::DbSessionStore;
    use tower_sessions::SessionStore;
    use tower_sessions::cookie::time::{Duration, OffsetDateTime};
    use tower_sessions::session::{Id, Record};

    let app = TestApp::spawn(backend).await;
    let store = DbSessionStore::new(app.state.db.clone());
    let mut live = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    };
    live.data.insert("operator_id".into(), json!(7));
    store.create(&mut live).await.unwrap();
    assert_eq!(store.load(&live.id).await.unwrap(), Some(live.clone()));

    let mut old = live.clone();
    old.id = Id::default();
    old.expiry_date = OffsetDateTime::now_utc() - Duration::minutes(1);
    store.save(&old).await.unwrap();
    assert_eq!(store.load(&old.id).await.unwrap(), None);

    store.delete(&live.id).await.unwrap();
    assert_eq!(store.load(&live.id).await.unwrap(), None);
}

// ---- actions ----

async fn as_admin(app: &TestApp) -> reqwest::Client {
    hotline580::auth::create_operator(&app.state.db, "boss", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = client
        .post(app.url("/api/login"))
        .json(&json!({ "username": "boss", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    client
}

async fn post_json(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn scalar_i64(app: &TestApp, sql: &'static str, id: i64) -> i64 {
    on_db!(&app.state.db, |c| sqlx::query_scalar::<_, i64>(sql)
        .bind(id)
        .fetch_one(c)
        .await)
    .unwrap()
}

async fn operator_events(app: &TestApp, request_id: i64) -> Vec<(String, String, String)> {
    on_db!(&app.state.db, |c| sqlx::query_as(
        "SELECT type, actor, data FROM events WHERE request_id = $1 AND actor LIKE 'operator:%' ORDER BY id"
    )
    .bind(request_id)
    .fetch_all(c)
    .await)
    .unwrap()
}

async fn outbox_to(app: &TestApp, phone: &str) -> Vec<String> {
    on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT body FROM outbox WHERE to_phone = $1 ORDER BY id"
    )
    .bind(phone)
    .fetch_all(c)
    .await)
    .unwrap()
}

async fn assigning_withdraws_open_offers_tells_everyone_and_writes_an_event(backend: Backend) {
    let app = logged_in(backend).await;
    let wang = resident(&app, "王秀英", "+8613900000001", "5 Jiefang Rd").await;
    let li = volunteer(&app, "Li Wei", "+8613700000001", "repair", 0).await;
    let zhao = volunteer(&app, "Zhao", "+8613700000002", "repair", 0).await;
    let id = request(&app, "offering", Some(wang), None, T0).await;
    offer(&app, id, li, "47", "pending", T0, None).await;

    let r = post_json(
        &app,
        &format!("/api/requests/{id}/assign"),
        json!({ "volunteer_id": zhao }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    assert_eq!(body["status"], "assigned");
    assert_eq!(body["volunteer_id"], zhao);
    let offers = body["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 2, "{offers:?}");
    assert_eq!(offers[0]["status"], "withdrawn");
    assert_eq!(offers[1]["volunteer_id"], zhao);
    assert_eq!(offers[1]["status"], "accepted");

    let events = operator_events(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "request.status");
    assert_eq!(events[0].1, "operator:alice");
    assert!(events[0].2.contains("assigned"), "{:?}", events[0]);

    // The withdrawn volunteer is thanked, the new one gets the details, the resident is told.
    let to_li = outbox_to(&app, "+8613700000001").await;
    assert_eq!(to_li.len(), 1, "{to_li:?}");
    assert!(to_li[0].contains("47"), "{to_li:?}");
    let to_zhao = outbox_to(&app, "+8613700000002").await;
    assert_eq!(to_zhao.len(), 1, "{to_zhao:?}");
    assert!(to_zhao[0].contains("5 Jiefang Rd"), "{to_zhao:?}");
    assert!(to_zhao[0].contains("+8613900000001"), "{to_zhao:?}");
    let to_wang = outbox_to(&app, "+8613900000001").await;
    assert_eq!(to_wang.len(), 1, "{to_wang:?}");
    assert!(to_wang[0].contains("Zhao"), "{to_wang:?}");

    // A second assignment is refused and changes nothing.
    let r = post_json(
        &app,
        &format!("/api/requests/{id}/assign"),
        json!({ "volunteer_id": li }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let msg = json_of(r).await["error"].as_str().unwrap().to_string();
    assert!(msg.contains("already assigned"), "{msg}");
    assert_eq!(
        scalar_i64(&app, "SELECT volunteer_id FROM requests WHERE id = $1", id).await,
        zhao
    );
    assert_eq!(operator_events(&app, id).await.len(), 1);
}

async fn assigning_to_nobody_or_a_closed_request_is_refused(backend: Backend) {
    let app = logged_in(backend).await;
    let li = volunteer(&app, "Li Wei", "+8613700000001", "repair", 0).await;
    let closed = request(&app, "closed", None, None, T0).await;
    let open = request(&app, "escalated", None, None, T0).await;
    let r = post_json(
        &app,
        &format!("/api/requests/{closed}/assign"),
        json!({ "volunteer_id": li }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("closed")
    );
    let r = post_json(
        &app,
        &format!("/api/requests/{open}/assign"),
        json!({ "volunteer_id": 9999 }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("volunteer")
    );
    let r = post_json(
        &app,
        "/api/requests/9999/assign",
        json!({ "volunteer_id": li }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post_json(
        &app,
        &format!("/api/requests/{open}/assign"),
        json!({ "volunteer": li }),
    )
    .await;
    assert!(r.status().is_client_error());
    assert!(json_of(r).await["error"].is_string());
    assert_eq!(operator_events(&app, open).await.len(), 0);
    let count = scalar_i64(
        &app,
        "SELECT COUNT(*) FROM offers WHERE request_id = $1",
        open,
    )
    .await;
    assert_eq!(count, 0);
}

async fn cancelling_withdraws_offers_records_the_reason_and_happens_once(backend: Backend) {
    let app = logged_in(backend).await;
    let li = volunteer(&app, "Li Wei", "+8613700000001", "repair", 0).await;
    let id = request(&app, "offering", None, None, T0).await;
    offer(&app, id, li, "47", "pending", T0, None).await;
    let r = post_json(
        &app,
        &format!("/api/requests/{id}/cancel"),
        json!({ "reason": "resident called: solved" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["offers"][0]["status"], "withdrawn");
    let events = operator_events(&app, id).await;
    assert_eq!(events.len(), 1);
    let data: Value = serde_json::from_str(&events[0].2).unwrap();
    assert_eq!(data["status"], "cancelled");
    assert_eq!(data["reason"], "resident called: solved");
    assert_eq!(outbox_to(&app, "+8613700000001").await.len(), 1);

    let r = post_json(&app, &format!("/api/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
    assert_eq!(operator_events(&app, id).await.len(), 1);
}

async fn cancelling_an_assigned_request_tells_its_volunteer(backend: Backend) {
    let app = logged_in(backend).await;
    let li = volunteer(&app, "Li Wei", "+8613700000001", "repair", 0).await;
    let id = request(&app, "assigned", None, Some(li), T0).await;
    offer(&app, id, li, "47", "accepted", T0, Some(T0)).await;
    // An empty JSON body is fine: the reason is optional.
    let r = app
        .client
        .post(app.url(&format!("/api/requests/{id}/cancel")))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let to_li = outbox_to(&app, "+8613700000001").await;
    assert_eq!(to_li.len(), 1);
    assert!(to_li[0].contains("47"), "{to_li:?}");
}

async fn state_changing_calls_take_json_only(backend: Backend) {
    let app = logged_in(backend).await;
    let id = request(&app, "escalated", None, None, T0).await;
    for action in ["cancel", "close", "reoffer", "notes", "assign"] {
        let r = app
            .client
            .post(app.url(&format!("/api/requests/{id}/{action}")))
            .form(&[("reason", "x"), ("text", "x"), ("volunteer_id", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{action}");
        assert!(
            json_of(r).await["error"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
        let r = app
            .client
            .post(app.url(&format!("/api/requests/{id}/{action}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{action} without a body"
        );
    }
    let r = app
        .client
        .patch(app.url(&format!("/api/requests/{id}")))
        .form(&[("grade", "red")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        on_db!(&app.state.db, |c| sqlx::query_scalar::<_, String>(
            "SELECT status FROM requests WHERE id = $1"
        )
        .bind(id)
        .fetch_one(c)
        .await)
        .unwrap(),
        "escalated"
    );
    assert!(operator_events(&app, id).await.is_empty());
}

async fn notes_grades_and_closing_are_events_naming_the_operator(backend: Backend) {
    let app = logged_in(backend).await;
    let id = request(&app, "escalated", None, None, T0).await;
    let r = post_json(
        &app,
        &format!("/api/requests/{id}/notes"),
        json!({ "text": "called back, she is fine" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = post_json(
        &app,
        &format!("/api/requests/{id}/notes"),
        json!({ "text": "   " }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = app
        .client
        .patch(app.url(&format!("/api/requests/{id}")))
        .json(&json!({ "grade": "red", "category": "escort" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    assert_eq!(body["grade"], "red");
    assert_eq!(body["category"], "escort");
    let r = app
        .client
        .patch(app.url(&format!("/api/requests/{id}")))
        .json(&json!({ "grade": "purple" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("red, yellow, blue")
    );

    let r = post_json(&app, &format!("/api/requests/{id}/close"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["status"], "closed");
    let r = post_json(&app, &format!("/api/requests/{id}/close"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let kinds: Vec<String> = operator_events(&app, id)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        kinds,
        [
            "request.updated",
            "request.updated",
            "alert",
            "request.status"
        ]
    );
    let offering = request(&app, "offering", None, None, T0).await;
    let r = post_json(&app, &format!("/api/requests/{offering}/close"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("Cancel it instead")
    );
}

async fn volunteer_at(
    app: &TestApp,
    name: &str,
    phone: &str,
    lat: f64,
    lon: f64,
    skills: &str,
) -> i64 {
    on_db!(&app.state.db, |c| {
        sqlx::query_scalar(
            "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'zh', 1, 0, 0) RETURNING id",
        )
        .bind(name)
        .bind(phone)
        .bind(lat)
        .bind(lon)
        .bind(skills)
        .fetch_one(c)
        .await
    })
    .unwrap()
}

async fn reoffering_starts_a_new_cascade_and_candidates_are_nearest_first(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("HOTLINE580__DISPATCH__QUIET_HOURS", "off")]).await;
    hotline580::auth::create_operator(&app.state.db, "alice", PASSWORD, Role::Operator)
        .await
        .unwrap();
    assert_eq!(
        login(&app, "alice", PASSWORD).await.status(),
        StatusCode::OK
    );
    let home = on_db!(&app.state.db, |c| sqlx::query_scalar::<_, i64>(
        "INSERT INTO residents (name, phone, address, lat, lon, created_at, updated_at) \
         VALUES ('Wang', '+8613900000001', 'x', 29.5600, 106.5700, 0, 0) RETURNING id"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    let far = volunteer_at(&app, "Far", "+8613700000001", 29.5800, 106.5700, "repair").await;
    let near = volunteer_at(&app, "Near", "+8613700000002", 29.5610, 106.5700, "repair").await;
    volunteer_at(
        &app,
        "Wrong skill",
        "+8613700000003",
        29.5601,
        106.5700,
        "errands",
    )
    .await;
    let id = request(&app, "escalated", Some(home), None, T0).await;

    let r = app.get(&format!("/api/requests/{id}/candidates")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = json_of(r).await;
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["volunteer_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![near, far]);
    assert_eq!(list[0]["name"], "Near");

    let r = post_json(&app, &format!("/api/requests/{id}/reoffer"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["status"], "offering");
    // The new cascade offers the nearest volunteer.
    let mut offered = Vec::new();
    for _ in 0..200 {
        offered = on_db!(&app.state.db, |c| sqlx::query_scalar::<_, i64>(
            "SELECT volunteer_id FROM offers WHERE request_id = $1"
        )
        .bind(id)
        .fetch_all(c)
        .await)
        .unwrap();
        if !offered.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(offered, vec![near]);
    let r = post_json(&app, &format!("/api/requests/{id}/reoffer"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

/// Polls until the request has `want` offers; returns (volunteer, status) oldest first.
async fn wait_for_offers(app: &TestApp, id: i64, want: usize) -> Vec<(i64, String)> {
    for _ in 0..400 {
        let offers = on_db!(&app.state.db, |c| sqlx::query_as::<_, (i64, String)>(
            "SELECT volunteer_id, status FROM offers WHERE request_id = $1 ORDER BY id"
        )
        .bind(id)
        .fetch_all(c)
        .await)
        .unwrap();
        if offers.len() >= want {
            return offers;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("request {id} never had {want} offers");
}

async fn offering_again_asks_a_volunteer_who_declined_before(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("HOTLINE580__DISPATCH__QUIET_HOURS", "off")]).await;
    hotline580::auth::create_operator(&app.state.db, "alice", PASSWORD, Role::Operator)
        .await
        .unwrap();
    assert_eq!(
        login(&app, "alice", PASSWORD).await.status(),
        StatusCode::OK
    );
    let home = on_db!(&app.state.db, |c| sqlx::query_scalar::<_, i64>(
        "INSERT INTO residents (name, phone, address, lat, lon, created_at, updated_at) \
         VALUES ('Wang', '+8613900000001', 'x', 29.5600, 106.5700, 0, 0) RETURNING id"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    let near = volunteer_at(&app, "Near", "+8613700000002", 29.5610, 106.5700, "repair").await;
    let id = request(&app, "escalated", Some(home), None, T0).await;
    let path = format!("/api/requests/{id}/reoffer");
    let reoffer = || post_json(&app, &path, json!({}));
    assert_eq!(reoffer().await.status(), StatusCode::OK);
    assert_eq!(
        wait_for_offers(&app, id, 1).await,
        [(near, "pending".to_string())]
    );
    // The only volunteer says no; the request comes back to the operators.
    let sql = "UPDATE offers SET status = 'declined', answered_at = 1 WHERE request_id = $1";
    on_db!(&app.state.db, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();
    let sql = "UPDATE requests SET status = 'escalated', escalation_reason = 'no_volunteer' WHERE id = $1";
    on_db!(&app.state.db, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();

    // Circumstances changed; the operator offers again and Near is asked again.
    assert_eq!(reoffer().await.status(), StatusCode::OK);
    assert_eq!(
        wait_for_offers(&app, id, 2).await,
        [
            (near, "declined".to_string()),
            (near, "pending".to_string())
        ]
    );
    let detail = json_of(app.get(&format!("/api/requests/{id}")).await).await;
    assert_eq!(detail["offers"].as_array().unwrap().len(), 2);
    // A volunteer never holds two pending offers for one request, and one
    // request has one accepted offer at most.
    for (status, sql) in [
        (
            "pending",
            "UPDATE offers SET status = 'pending' WHERE request_id = $1",
        ),
        (
            "accepted",
            "UPDATE offers SET status = 'accepted' WHERE request_id = $1",
        ),
    ] {
        let r = on_db!(&app.state.db, |c| sqlx::query(sql)
            .bind(id)
            .execute(c)
            .await
            .map(|_| ()));
        assert!(r.is_err(), "two {status} offers were allowed");
    }
}

async fn only_an_administrator_edits_volunteers(backend: Backend) {
    let app = logged_in(backend).await;
    let li = volunteer(&app, "Li Wei", "+8613700000001", "repair", 0).await;
    let r = app
        .client
        .patch(app.url(&format!("/api/volunteers/{li}")))
        .json(&json!({ "available": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("administrator")
    );

    let admin = as_admin(&app).await;
    let patch = |body: Value| {
        admin
            .patch(app.url(&format!("/api/volunteers/{li}")))
            .json(&body)
            .send()
    };
    let r = patch(
        json!({ "name": "Li Wei Jr", "skills": ["repair", "escort"], "languages": ["en"],
        "available": false, "max_active": 3, "quiet_hours": "23:00-6:30" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    assert_eq!(body["name"], "Li Wei Jr");
    assert_eq!(body["skills"], json!(["repair", "escort"]));
    assert_eq!(body["languages"], json!(["en"]));
    assert_eq!(body["available"], false);
    assert_eq!(body["max_active"], 3);
    let quiet: Option<String> = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT quiet_hours FROM volunteers WHERE id = $1"
    )
    .bind(li)
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(quiet.as_deref(), Some("23:00-06:30"));

    for (bad, word) in [
        (json!({ "quiet_hours": "late" }), "quiet_hours"),
        (json!({ "skills": ["emergency"] }), "skill"),
        (json!({ "languages": ["fr"] }), "language"),
        (json!({ "max_active": 0 }), "max_active"),
        (json!({ "name": " " }), "name"),
        (json!({}), "nothing to change"),
    ] {
        let r = patch(bad.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let msg = json_of(r).await["error"].as_str().unwrap().to_string();
        assert!(msg.contains(word), "{bad}: {msg}");
    }
    let r = patch(json!({ "quiet_hours": null })).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let quiet: Option<String> = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT quiet_hours FROM volunteers WHERE id = $1"
    )
    .bind(li)
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(quiet, None);
    let actors: Vec<String> = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT actor FROM events WHERE type = 'volunteer.updated' ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .unwrap();
    assert_eq!(actors, ["operator:boss", "operator:boss"]);
}

async fn the_openapi_description_lists_the_actions(backend: Backend) {
    let app = logged_in(backend).await;
    let doc = json_of(app.get("/api/openapi.json").await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Every route of CONTRACT.md's JSON API, with its method.
    for (method, path) in [
        ("post", "/api/login"),
        ("post", "/api/logout"),
        ("get", "/api/requests"),
        ("get", "/api/requests/{id}"),
        ("patch", "/api/requests/{id}"),
        ("post", "/api/requests/{id}/assign"),
        ("post", "/api/requests/{id}/cancel"),
        ("post", "/api/requests/{id}/done"),
        ("post", "/api/requests/{id}/reoffer"),
        ("post", "/api/requests/{id}/notes"),
        ("post", "/api/requests/{id}/close"),
        ("get", "/api/volunteers"),
        ("patch", "/api/volunteers/{id}"),
        ("get", "/api/stats"),
        ("get", "/api/openapi.json"),
        ("get", "/api/events"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let stats_params: Vec<&str> = doc["paths"]["/api/stats"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(stats_params, ["from", "to"]);
    assert!(doc["components"]["schemas"]["Stats"]["properties"]["by_grade"].is_object());
    assert!(doc["components"]["schemas"]["AssignBody"]["properties"]["volunteer_id"].is_object());
    let anonymous = reqwest::get(app.url("/api/openapi.json")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// Reads the event stream until `want` events have arrived.
async fn read_events(r: reqwest::Response, want: usize) -> Vec<(i64, Value)> {
    use futures::StreamExt;
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < want {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
            .await
            .expect("an event within 20 s")
            .expect("the stream stays open")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .map(|v| v.trim().parse::<i64>().unwrap());
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(|v| serde_json::from_str::<Value>(v.trim()).unwrap());
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, data));
            }
        }
    }
    out
}

async fn the_event_stream_delivers_new_events_and_resumes_after_last_event_id(backend: Backend) {
    let app = logged_in(backend).await;
    let id = request(&app, "escalated", None, None, T0).await;
    event(&app, id, "request.created", T0, "{}").await;
    let r = app.get("/api/events").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let reader = tokio::spawn(read_events(r, 1));
    // Give the stream a moment to be listening is not needed: it starts after the current last id.
    let note = post_json(
        &app,
        &format!("/api/requests/{id}/notes"),
        json!({ "text": "hello" }),
    )
    .await;
    assert_eq!(note.status(), StatusCode::OK);
    let got = reader.await.unwrap();
    assert_eq!(got[0].1["type"], "request.updated");
    assert_eq!(got[0].1["request_id"], id);
    assert!(got[0].1["at"].as_str().unwrap().ends_with('Z'));
    let note_id = got[0].0;

    // Resuming after the first event replays what came after it.
    let first: i64 = scalar_i64(&app, "SELECT MIN(id) FROM events WHERE request_id = $1", id).await;
    let r = app
        .client
        .get(app.url("/api/events"))
        .header("Last-Event-ID", first.to_string())
        .send()
        .await
        .unwrap();
    let replay = read_events(r, 1).await;
    assert_eq!(replay[0].0, note_id);

    let anonymous = reqwest::get(app.url("/api/events")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn the_event_stream_ends_when_its_session_logs_out(backend: Backend) {
    use futures::StreamExt;
    let app = logged_in(backend).await;
    let r = app.get("/api/events").await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut stream = r.bytes_stream();
    // Another request with the same cookie logs out.
    let out = app
        .client
        .post(app.url("/api/logout"))
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success(), "{}", out.status());
    // The stream ends (keep-alive comments may come first).
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
            .await
            .expect("the stream ends within 20 s of the logout");
        match chunk {
            None | Some(Err(_)) => break,
            Some(Ok(bytes)) => assert!(
                !String::from_utf8_lossy(&bytes).contains("data:"),
                "no event after the logout"
            ),
        }
    }
    assert_eq!(
        app.get("/api/events").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn events_written_by_another_instance_reach_this_ones_stream(backend: Backend) {
    let app = logged_in(backend).await;
    let id = request(&app, "escalated", None, None, T0).await;
    let r = app.get("/api/events").await;
    let reader = tokio::spawn(read_events(r, 1));
    // A second service on the same database, as a second instance would be.
    let db = common::TestDb::shared(&app.db.url);
    let other = TestApp::spawn_on(db, &[]).await;
    let mut tx = other.state.db.begin().await.unwrap();
    hotline580::store::append_event(
        &mut tx,
        hotline580::store::EventInput {
            request_id: Some(id),
            kind: "alert",
            actor: "system",
            data: json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got[0].1["type"], "alert");
    other.stop().await;
}

on_both_backends!(
    every_api_route_answers_401_json_without_a_login,
    a_wrong_password_and_an_unknown_user_get_the_same_401,
    a_login_sets_an_http_only_strict_session_cookie,
    logging_out_ends_the_session,
    a_stolen_cookie_is_worthless_after_logout,
    the_event_stream_ends_when_its_session_logs_out,
    a_form_encoded_login_is_refused_with_415,
    too_many_failed_logins_are_refused_with_429,
    requests_are_listed_newest_first_in_the_contracts_shape,
    an_unknown_status_or_a_bad_limit_is_a_400_that_says_what_to_use,
    one_request_shows_its_offers_and_events_oldest_first,
    volunteers_are_listed_with_their_active_jobs,
    an_expired_session_row_is_not_loaded,
    assigning_withdraws_open_offers_tells_everyone_and_writes_an_event,
    assigning_to_nobody_or_a_closed_request_is_refused,
    cancelling_withdraws_offers_records_the_reason_and_happens_once,
    cancelling_an_assigned_request_tells_its_volunteer,
    state_changing_calls_take_json_only,
    notes_grades_and_closing_are_events_naming_the_operator,
    reoffering_starts_a_new_cascade_and_candidates_are_nearest_first,
    offering_again_asks_a_volunteer_who_declined_before,
    only_an_administrator_edits_volunteers,
    the_openapi_description_lists_the_actions,
    the_event_stream_delivers_new_events_and_resumes_after_last_event_id,
    events_written_by_another_instance_reach_this_ones_stream,
);
