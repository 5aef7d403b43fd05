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
    for path in ["/api/requests", "/api/requests/1", "/api/volunteers"] {
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

on_both_backends!(
    every_api_route_answers_401_json_without_a_login,
    a_wrong_password_and_an_unknown_user_get_the_same_401,
    a_login_sets_an_http_only_strict_session_cookie,
    logging_out_ends_the_session,
    a_stolen_cookie_is_worthless_after_logout,
    a_form_encoded_login_is_refused_with_415,
    too_many_failed_logins_are_refused_with_429,
    requests_are_listed_newest_first_in_the_contracts_shape,
    an_unknown_status_or_a_bad_limit_is_a_400_that_says_what_to_use,
    one_request_shows_its_offers_and_events_oldest_first,
    volunteers_are_listed_with_their_active_jobs,
    an_expired_session_row_is_not_loaded,
);
