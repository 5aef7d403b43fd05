//! The console in a real headless Chromium, driven over WebDriver
//! (`chromedriver`, path in `HOTLINE580_TEST_CHROMEDRIVER`): log in, watch a
//! request arrive live after a signed webhook, open it, assign it, see its
//! status change, log out; a resident's `<script>` shows as text.
//! Screenshots go to `HOTLINE580_TEST_SCREENSHOTS` when set.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, PUBLIC_URL, TestApp};
use fantoccini::{Client, ClientBuilder, Locator};
use hotline580::domain::Role;
use hotline580::telephony::signature::expected_signature;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::fake_twilio::FakeTwilio;

const PASSWORD: &str = "correct horse battery";
const RESIDENT: &str = "+8613800000001";
const STRANGER: &str = "+8613811112222";

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver(path: &str) -> Driver {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {path}: {e}"));
    let url = format!("http://127.0.0.1:{port}");
    // Ready once it accepts connections.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver {
        child,
        url,
        _profile: tempfile::tempdir().unwrap(),
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1600,1000".into(),
        format!("--user-data-dir={}", driver._profile.path().display()),
    ];
    // The console's own audience: a browser asking for Chinese.
    let prefs = json!({ "intl.accept_languages": "zh-CN,zh" });
    if let Ok(bin) = std::env::var("HOTLINE580_TEST_CHROMIUM") {
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": args, "binary": bin }),
        );
    } else {
        args.push("--disable-dev-shm-usage".into());
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": args, "prefs": prefs }),
        );
    }
    ClientBuilder::rustls()
        .expect("TLS setup")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("HOTLINE580_TEST_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

async fn post_signed(app: &TestApp, path: &str, params: &[(&str, &str)]) -> u16 {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = expected_signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path}"), &owned);
    app.client
        .post(app.url(path))
        .header("X-Twilio-Signature", sig)
        .form(&owned)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn exec(app: &TestApp, sql: &'static str) {
    hotline580::on_db!(&app.state.db, |c| sqlx::query(sql)
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();
}

async fn newest_request(app: &TestApp) -> i64 {
    hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(MAX(id), 0) FROM requests"
    )
    .fetch_one(c)
    .await)
    .unwrap()
}

async fn card(c: &Client, id: i64) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!(".card[data-request-id=\"{id}\"]")))
        .await
        .unwrap_or_else(|e| panic!("request {id} never reached the board: {e}"))
}

/// The text of the first element matching `css` once `ok` accepts it. The
/// board re-renders on every live event, so an element found a moment ago may
/// be gone: look it up again until the text is right or 30 s have passed.
async fn text_of(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(el) = c.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            if ok(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed the expected text; last seen: {last:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_a_request_arrive_live_assigns_it_and_logs_out() {
    let Ok(driver_path) = std::env::var("HOTLINE580_TEST_CHROMEDRIVER") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP an_operator_sees_a_request_arrive_live_assigns_it_and_logs_out: HOTLINE580_TEST_CHROMEDRIVER is not set"
        );
        return;
    };
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let base = twilio.base_url();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
            ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
            ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
            ("HOTLINE580__TWILIO__API_BASE", base.as_str()),
            ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
        ],
    )
    .await;
    exec(&app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)").await;
    exec(&app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES ('李近邻', '+8613900000001', 29.5610, 106.5710, 'repair', 'zh', 2, 0, 0)").await;
    exec(&app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES ('王师傅', '+8613900000002', 29.5700, 106.5800, 'repair;errands', 'zh', 1, 0, 0)").await;
    hotline580::auth::create_operator(&app.state.db, "alice", PASSWORD, Role::Operator)
        .await
        .unwrap();

    let driver = start_driver(&driver_path).await;
    let c = browser(&driver).await;

    // Without a session the console sends us to the login.
    c.goto(&app.url("/console")).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/console/login");
    screenshot(&c, "1-login").await;
    c.find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("#login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#board"))
        .await
        .expect("the board after logging in");
    // The live stream is open before anything happens.
    c.wait()
        .for_element(Locator::Css("#live.up"))
        .await
        .unwrap();

    // A resident texts: a repair request, offered to the nearest volunteer; it
    // appears on the board without a reload.
    let marker: serde_json::Value = c
        .execute(
            "window.__sameDocument = 'yes'; return window.__sameDocument;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(marker, "yes");
    assert_eq!(
        post_signed(
            &app,
            "/twilio/sms",
            &[
                ("MessageSid", "SM1"),
                ("From", RESIDENT),
                ("Body", "家里水管坏了，漏水")
            ],
        )
        .await,
        200
    );
    let repair = newest_request(&app).await;
    card(&c, repair).await;
    text_of(&c, &format!(".card[data-request-id=\"{repair}\"]"), |t| {
        t.contains("张大爷")
    })
    .await;

    // A stranger's text with markup: an escalation, shown as text, alerting.
    assert_eq!(
        post_signed(
            &app,
            "/twilio/sms",
            &[
                ("MessageSid", "SM2"),
                ("From", STRANGER),
                ("Body", "<script>window.__xss=1</script><b>请回电</b>"),
            ],
        )
        .await,
        200
    );
    let stranger = newest_request(&app).await;
    assert_ne!(stranger, repair);
    card(&c, stranger).await;
    // Markup shows as text.
    text_of(&c, &format!(".card[data-request-id=\"{stranger}\"]"), |t| {
        t.contains("<script>window.__xss=1</script><b>请回电</b>")
    })
    .await;
    let xss: serde_json::Value = c
        .execute("return [window.__xss === undefined, document.querySelectorAll('#board b').length, window.__sameDocument];", vec![])
        .await
        .unwrap();
    assert_eq!(
        xss,
        json!([true, 0, "yes"]),
        "no script ran, no tag was made, no reload"
    );
    c.wait()
        .for_element(Locator::Css("#alert:not([hidden])"))
        .await
        .expect("an escalation raises the alert");
    screenshot(&c, "2-board").await;
    c.find(Locator::Css("#alert-dismiss"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Another operator grades the stranger's request red: the card turns red
    // and the red alert is raised, on this page, live.
    let patched: serde_json::Value = c
        .execute_async(
            "const [id, done] = arguments; fetch('/api/requests/' + id, {method: 'PATCH', \
             headers: {'Content-Type': 'application/json'}, body: JSON.stringify({grade: 'red'})}) \
             .then(r => done(r.status));",
            vec![json!(stranger)],
        )
        .await
        .unwrap();
    assert_eq!(patched, 200);
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!(
            ".card.red[data-request-id=\"{stranger}\"]"
        )))
        .await
        .expect("the card turns red");
    let alert = c
        .wait()
        .for_element(Locator::Css("#alert:not([hidden]) #alert-text"))
        .await
        .unwrap();
    let red_title = c
        .find(Locator::Css("#alert-title"))
        .await
        .unwrap()
        .html(true)
        .await
        .unwrap();
    assert_eq!(
        alert.text().await.unwrap(),
        format!("{red_title} #{stranger}")
    );
    assert!(
        c.find(Locator::Css("#redbar")).await.is_ok(),
        "the red bar shows"
    );
    screenshot(&c, "2b-red").await;
    c.find(Locator::Css("#alert-dismiss"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Open the repair request and assign it to the nearest volunteer.
    card(&c, repair).await.click().await.unwrap();
    c.wait()
        .for_element(Locator::Css(&format!("body[data-request-id=\"{repair}\"]")))
        .await
        .unwrap();
    // Nearest first.
    text_of(&c, ".candidates li", |t| t.contains("李近邻")).await;
    let first = c
        .wait()
        .for_element(Locator::Css(".candidates li"))
        .await
        .expect("nearest volunteers are listed");
    screenshot(&c, "3-request").await;
    first
        .find(Locator::Css("[data-action=\"assign\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#status[data-status=\"assigned\"]"))
        .await
        .expect("the status changes to assigned");
    text_of(&c, "#volunteer", |t| t == "李近邻").await;
    screenshot(&c, "4-assigned").await;
    let status: String = hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT status FROM requests WHERE id = $1"
    )
    .bind(repair)
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(status, "assigned");

    // The stranger's request page shows the words as text too.
    c.goto(&app.url(&format!("/console/requests/{stranger}")))
        .await
        .unwrap();
    let desc = c
        .wait()
        .for_element(Locator::Css("#description"))
        .await
        .unwrap();
    assert_eq!(
        desc.text().await.unwrap(),
        "<script>window.__xss=1</script><b>请回电</b>"
    );
    screenshot(&c, "5-escaped").await;

    // The volunteers page lists them.
    c.goto(&app.url("/console/volunteers")).await.unwrap();
    let table = c
        .wait()
        .for_element(Locator::Css("#volunteers"))
        .await
        .unwrap();
    assert!(table.text().await.unwrap().contains("王师傅"));
    screenshot(&c, "6-volunteers").await;

    // The figures page shows the stats endpoint's answer, or says it is missing.
    c.goto(&app.url("/console/figures")).await.unwrap();
    c.wait()
        .for_element(Locator::Css("#figures > *"))
        .await
        .expect("the figures section is filled");
    screenshot(&c, "7-figures").await;

    c.find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#login-form"))
        .await
        .expect("back at the login");
    c.goto(&app.url("/console")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/console/login");

    // An administrator switches a volunteer off and gives another quiet hours.
    hotline580::auth::create_operator(&app.state.db, "boss", PASSWORD, Role::Admin)
        .await
        .unwrap();
    c.find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys("boss")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("#login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#board")).await.unwrap();
    c.goto(&app.url("/console/volunteers")).await.unwrap();
    let ids: Vec<i64> = hotline580::on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT id FROM volunteers ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .unwrap();
    let (near, other) = (ids[0], ids[1]);
    c.wait()
        .for_element(Locator::Css(&format!(
            "tr[data-volunteer-id=\"{other}\"] [data-action=\"toggle\"]"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(&format!(
            "tr[data-volunteer-id=\"{other}\"][data-available=\"0\"]"
        )))
        .await
        .expect("switched off");
    c.find(Locator::Css(&format!(
        "tr[data-volunteer-id=\"{near}\"] [data-action=\"edit\"]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let quiet = c
        .wait()
        .for_element(Locator::Css("#edit-form input[name=\"quiet_hours\"]"))
        .await
        .unwrap();
    quiet.clear().await.unwrap();
    quiet.send_keys("23:00-06:00").await.unwrap();
    screenshot(&c, "8-edit").await;
    c.find(Locator::Css("#edit-form button[type=\"submit\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(&format!(
            "tr[data-volunteer-id=\"{near}\"][data-quiet-hours=\"23:00-06:00\"]"
        )))
        .await
        .expect("quiet hours saved");
    let (available, quiet): (bool, Option<String>) = hotline580::on_db!(&app.state.db, |c| sqlx::query_as(
        "SELECT (SELECT available FROM volunteers WHERE id = $1), (SELECT quiet_hours FROM volunteers WHERE id = $2)"
    )
    .bind(other)
    .bind(near)
    .fetch_one(c)
    .await)
    .unwrap();
    assert!(!available);
    assert_eq!(quiet.as_deref(), Some("23:00-06:00"));
    screenshot(&c, "9-volunteers-admin").await;
    c.close().await.unwrap();
}
