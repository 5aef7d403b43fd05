//! The console's pages over HTTP: logins by form with CSRF tokens, redirects
//! without a session, the security headers, escaping, and languages.

mod common;
use common::{Backend, TestApp};
use hotline580::domain::Role;
use hotline580::on_db;
use reqwest::StatusCode;

const PASSWORD: &str = "correct horse battery";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[i..].chars().take_while(|c| *c != '"').collect()
}

async fn login_page(app: &TestApp, b: &reqwest::Client) -> String {
    let r = b.get(app.url("/console/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

async fn post_login(
    app: &TestApp,
    b: &reqwest::Client,
    csrf: &str,
    password: &str,
) -> reqwest::Response {
    b.post(app.url("/console/login"))
        .form(&[
            ("username", "alice"),
            ("password", password),
            ("csrf", csrf),
        ])
        .send()
        .await
        .unwrap()
}

async fn app_and_browser(backend: Backend) -> (TestApp, reqwest::Client) {
    app_and_browser_with(backend, &[]).await
}

async fn app_and_browser_with(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (TestApp, reqwest::Client) {
    let app = TestApp::spawn_with(backend, extra).await;
    hotline580::auth::create_operator(&app.state.db, "alice", PASSWORD, Role::Operator)
        .await
        .unwrap();
    (app, browser())
}

async fn logged_in(backend: Backend) -> (TestApp, reqwest::Client) {
    logged_in_with(backend, &[]).await
}

async fn logged_in_with(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, reqwest::Client) {
    let (app, b) = app_and_browser_with(backend, extra).await;
    let csrf = csrf_of(&login_page(&app, &b).await);
    let r = post_login(&app, &b, &csrf, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console");
    (app, b)
}

async fn console_pages_send_a_visitor_without_a_session_to_the_login(backend: Backend) {
    let (app, b) = app_and_browser(backend).await;
    for path in [
        "/console",
        "/console/volunteers",
        "/console/figures",
        "/console/requests/1",
    ] {
        let r = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()["location"], "/console/login", "{path}");
    }
    // Public surfaces stay public.
    for path in [
        "/healthz",
        "/open311/v2/services.json",
        "/console/assets/console.js",
    ] {
        assert_eq!(
            b.get(app.url(path)).send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
}

async fn the_login_form_needs_its_csrf_token_and_the_right_password(backend: Backend) {
    let (app, b) = app_and_browser(backend).await;
    let page = login_page(&app, &b).await;
    let csrf = csrf_of(&page);
    assert_eq!(csrf.len(), 64);
    let sessions: i64 = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(
        sessions, 0,
        "a visitor of the login page gets no session row"
    );
    // No token, or another one: refused, and no session.
    for token in [
        "",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = post_login(&app, &b, token, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = b.get(app.url("/console")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    // A token from another browser is no good either.
    let other = browser();
    let foreign = csrf_of(&login_page(&app, &other).await);
    assert_eq!(
        post_login(&app, &b, &foreign, PASSWORD).await.status(),
        StatusCode::FORBIDDEN
    );

    let r = post_login(&app, &b, &csrf, "wrong").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let html = r.text().await.unwrap();
    assert!(html.contains("class=\"error\""), "{html}");
    let r = post_login(&app, &b, &csrf, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b.get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn logging_out_by_form_needs_the_token(backend: Backend) {
    let (app, b) = logged_in(backend).await;
    let page = b
        .get(app.url("/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = b
        .post(app.url("/console/logout"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        b.get(app.url("/console")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let r = b
        .post(app.url("/console/logout"))
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/login");
    assert_eq!(
        b.get(app.url("/console")).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
}

async fn pages_forbid_inline_script_and_escape_what_people_wrote(backend: Backend) {
    let (app, b) = logged_in(backend).await;
    let id: i64 = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "INSERT INTO requests (status, category, grade, channel, description, caller_phone, created_at, updated_at) \
         VALUES ('escalated', 'other', 'red', 'sms', '<script>alert(1)</script> & \"quotes\"', '+8613800138000', 0, 0) RETURNING id"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    for path in ["/console".to_string(), format!("/console/requests/{id}")] {
        let r = b.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script>alert(1)"), "{path}: unescaped");
        let at = html.find("alert(1)").expect("the words are shown");
        assert_eq!(
            &html[at - 16..at + 8],
            "&#60;script&#62;alert(1)",
            "{path}: escaped as text"
        );
        // The only scripts are files of ours.
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script src=\"/console/assets/").count(),
            "{path}"
        );
        assert!(html.contains("<script src=\"/console/assets/console.js\" defer></script>"));
    }
    let r = b
        .get(app.url(&format!("/console/requests/{id}")))
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data-action=\"close\""),
        "an escalation can be closed"
    );
}

async fn the_language_follows_the_browser_then_the_operators_choice(backend: Backend) {
    let (app, b) = logged_in(backend).await;
    let en = b
        .get(app.url("/console"))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("<html lang=\"en\">"));
    assert!(en.contains("Volunteers"));
    let zh = b
        .get(app.url("/console"))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("<html lang=\"zh\">"));
    assert!(zh.contains("志愿者"));
    let r = b
        .post(app.url("/console/lang"))
        .form(&[
            ("csrf", csrf_of(&zh).as_str()),
            ("lang", "en"),
            ("back", "/console/volunteers"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/volunteers");
    let chosen = b
        .get(app.url("/console"))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        chosen.contains("<html lang=\"en\">"),
        "the operator's choice wins"
    );
    // Never sent elsewhere.
    let r = b
        .post(app.url("/console/lang"))
        .form(&[
            ("csrf", csrf_of(&zh).as_str()),
            ("lang", "zh"),
            ("back", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/console");
}

/// The `img-src` directive's sources.
fn img_sources(r: &reqwest::Response) -> Vec<String> {
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    let directive = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("img-src "))
        .unwrap_or_else(|| panic!("no img-src in {csp}"));
    directive
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect()
}

async fn a_configured_tile_server_reaches_the_map_and_the_csp(backend: Backend) {
    let (app, b) = logged_in_with(
        backend,
        &[
            (
                "HOTLINE580__CONSOLE__MAP_TILES",
                "https://tiles.example/{z}/{x}/{y}.png",
            ),
            (
                "HOTLINE580__CONSOLE__MAP_ATTRIBUTION",
                "<b>© OpenStreetMap</b>",
            ),
        ],
    )
    .await;
    for path in ["/console", "/console/simulator"] {
        let r = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            img_sources(&r),
            ["'self'", "data:", "https://tiles.example"],
            "{path}"
        );
        let html = r.text().await.unwrap();
        assert!(
            html.contains(r#"data-map data-tiles="https://tiles.example/{z}/{x}/{y}.png">"#),
            "{path}: {html}"
        );
        assert!(!html.contains("<b>©"), "{path}: the attribution is escaped");
        assert!(html.contains("&#60;b&#62;© OpenStreetMap"), "{path}");
    }
}

async fn without_a_tile_server_the_map_stays_offline(backend: Backend) {
    let (app, b) = logged_in(backend).await;
    for path in ["/console", "/console/simulator"] {
        let r = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(img_sources(&r), ["'self'", "data:"], "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains("data-map>"), "{path}");
        assert!(!html.contains("data-tiles"), "{path}");
        assert!(!html.contains("map-attribution"), "{path}");
    }
}

on_both_backends!(
    a_configured_tile_server_reaches_the_map_and_the_csp,
    without_a_tile_server_the_map_stays_offline,
    console_pages_send_a_visitor_without_a_session_to_the_login,
    the_login_form_needs_its_csrf_token_and_the_right_password,
    logging_out_by_form_needs_the_token,
    pages_forbid_inline_script_and_escape_what_people_wrote,
    the_language_follows_the_browser_then_the_operators_choice,
);
