//! Issue #7's walk-through in a real headless Chromium (`chromedriver`, path in
//! `HOTLINE580_TEST_CHROMEDRIVER`; SKIP without it): start `hotline580 demo`,
//! log in, call the hotline from the simulator as a resident asking for a
//! repair, see the offer reach the nearest volunteer who repairs, press YES on
//! their phone, and see the request assigned on the board and on its map.

use fantoccini::{Client, ClientBuilder, Locator};
use hotline580::domain::GeoPoint;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process (chromedriver, the demo) stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM lets the demo remove its database.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// `hotline580 demo` on a free port, from an empty folder; ready once it has
/// printed its URLs.
async fn start_demo(workdir: &std::path::Path) -> (Running, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .arg("demo")
        .current_dir(workdir)
        .env("HOTLINE580__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HOTLINE580__SERVER__PUBLIC_URL", &base)
        .env("HOTLINE580__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines() {
            if line.unwrap().starts_with("Ctrl-C") {
                break;
            }
        }
    })
    .await
    .unwrap();
    wait_for_port(port).await;
    (running, base)
}

async fn browser(driver_url: &str, profile: &std::path::Path) -> Client {
    let args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--no-first-run".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1600,1100".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut options = json!({ "args": args });
    if let Ok(bin) = std::env::var("HOTLINE580_TEST_CHROMIUM") {
        options["binary"] = json!(bin);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::rustls()
        .expect("TLS setup")
        .capabilities(caps)
        .connect(driver_url)
        .await
        .expect("a browser session")
}

/// Polls `check` every 100 ms for up to 60 s; the demo's jobs run on their own clock.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never happened");
}

/// Whether the element matching `css` exists and is enabled now (looked up
/// afresh: the pages re-render).
async fn enabled(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(el) => el.is_enabled().await.unwrap_or(false),
        Err(_) => false,
    }
}

async fn click(c: &Client, css: &str) {
    eventually(&format!("a click on {css}"), || async {
        let el = c.find(Locator::Css(css)).await.ok()?;
        el.click().await.ok()
    })
    .await
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_calls_for_a_repair_the_nearest_repairer_accepts_and_the_board_and_map_show_it()
{
    let Ok(driver_path) = std::env::var("HOTLINE580_TEST_CHROMEDRIVER") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP a_resident_calls_for_a_repair_…: HOTLINE580_TEST_CHROMEDRIVER is not set"
        );
        return;
    };
    let workdir = tempfile::tempdir().unwrap();
    let (_demo, base) = start_demo(workdir.path()).await;

    let driver_port = free_port();
    let _driver = Running(
        Command::new(&driver_path)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_path}: {e}")),
    );
    wait_for_port(driver_port).await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&format!("http://127.0.0.1:{driver_port}"), profile.path()).await;

    // The test's own look at the API, with its own login.
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = http
        .post(format!("{base}/api/login"))
        .json(&json!({"username": "demo", "password": "demo580"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let before = get_json(&http, format!("{base}/api/requests?limit=1")).await[0]["id"]
        .as_i64()
        .unwrap();

    // Log in through the console's form; the simulator is in its menu.
    c.goto(&format!("{base}/console")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/console/login");
    c.find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys("demo")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("demo580")
        .await
        .unwrap();
    click(&c, "#login-button").await;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#board"))
        .await
        .expect("the board after logging in");
    click(&c, "#nav-simulator").await;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("body[data-ready=\"true\"]"))
        .await
        .expect("the simulator is ready");

    // The first resident calls: confirm the address (1), repair (1), then a
    // description after the tone.
    click(&c, "#call").await;
    for key in ["1", "1"] {
        eventually("the IVR asking for a key", || async {
            enabled(&c, "#wait").await.then_some(())
        })
        .await;
        click(&c, &format!("#keypad button[data-key=\"{key}\"]")).await;
    }
    eventually("the IVR recording", || async {
        enabled(&c, "#record-stop").await.then_some(())
    })
    .await;
    c.find(Locator::Css("#speech"))
        .await
        .unwrap()
        .send_keys("厨房水龙头坏了 The kitchen tap is broken")
        .await
        .unwrap();
    click(&c, "#record-stop").await;

    // The request is offered to one volunteer.
    let (id, request) = eventually("a new repair request with an offer", || async {
        let newest = get_json(&http, format!("{base}/api/requests?limit=1")).await;
        let id = newest[0]["id"].as_i64()?;
        if id <= before {
            return None;
        }
        let one = get_json(&http, format!("{base}/api/requests/{id}")).await;
        (!one["offers"].as_array()?.is_empty()).then_some((id, one))
    })
    .await;
    assert_eq!(request["category"], "repair", "{request}");
    assert_eq!(request["grade"], "yellow", "{request}");
    let offers = request["offers"].as_array().unwrap();
    assert_eq!(
        offers.len(),
        1,
        "a yellow request's first wave is one volunteer"
    );
    let chosen = offers[0]["volunteer_id"].as_i64().unwrap();

    // That volunteer is the nearest who repairs and is free, counted in the
    // dispatcher's 100 m steps (within a step, language and fairness decide).
    let at = GeoPoint {
        lat: request["lat"].as_f64().expect("the request has a position"),
        lon: request["lon"].as_f64().unwrap(),
    };
    let volunteers = get_json(&http, format!("{base}/api/volunteers")).await;
    let step = |v: &Value| {
        let p = GeoPoint {
            lat: v["lat"].as_f64().unwrap(),
            lon: v["lon"].as_f64().unwrap(),
        };
        (at.distance_m(&p) / 100.0).floor() as i64
    };
    let free_repairers: Vec<&Value> = volunteers
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v["available"] == true
                && v["opted_out"] == false
                && v["active_jobs"].as_i64() < v["max_active"].as_i64()
                && v["skills"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == "repair")
        })
        .collect();
    let offered = free_repairers
        .iter()
        .find(|v| v["id"].as_i64() == Some(chosen))
        .expect("the offered volunteer repairs and is free");
    let nearest = free_repairers.iter().map(|v| step(v)).min().unwrap();
    assert_eq!(step(offered), nearest, "{offered} is not the nearest");

    // The offer shows on that volunteer's phone; YES accepts it.
    let phone = format!("#phone-{chosen}");
    eventually("the offer on the volunteer's phone", || async {
        let el = c.find(Locator::Css(&phone)).await.ok()?;
        let text = el.text().await.ok()?;
        text.contains("YES").then_some(())
    })
    .await;
    click(&c, &format!("{phone} button[data-reply=\"YES\"]")).await;
    eventually("the request assigned", || async {
        let one = get_json(&http, format!("{base}/api/requests/{id}")).await;
        (one["status"] == "assigned" && one["volunteer_id"].as_i64() == Some(chosen)).then_some(())
    })
    .await;

    // The board: the card in the assigned column; its pin selects it on the
    // map, which draws the accepted offer.
    c.goto(&format!("{base}/console")).await.unwrap();
    let card = format!(".card[data-request-id=\"{id}\"][data-status=\"assigned\"]");
    eventually("the card among the assigned", || async {
        c.find(Locator::Css(&card)).await.ok().map(|_| ())
    })
    .await;
    eventually("the request's square on the map", || async {
        c.find(Locator::Css(&format!(
            "#board-map rect[data-request=\"{id}\"]"
        )))
        .await
        .ok()
        .map(|_| ())
    })
    .await;
    click(&c, &format!("{card} [data-select=\"{id}\"]")).await;
    eventually("the accepted offer drawn on the map", || async {
        let selected: Value = c
            .execute(
                "const m = document.getElementById('board-map'); \
                 return [m.dataset.selected, m.querySelectorAll('line.offer-accepted').length, \
                         m.querySelectorAll('rect.req-selected').length];",
                vec![],
            )
            .await
            .ok()?;
        (selected == json!([id.to_string(), 1, 1])).then_some(())
    })
    .await;
    // Still on the board: the pin selected, it did not open the request.
    assert_eq!(c.current_url().await.unwrap().path(), "/console");

    // The figures page charts the last seven days, today's call included.
    c.goto(&format!("{base}/console/figures")).await.unwrap();
    eventually("the charts drawn", || async {
        let bars: Value = c
            .execute(
                "return ['chart-per-day', 'chart-accept', 'chart-satisfaction', 'chart-category']\
                   .map(id => document.querySelectorAll('#' + id + ' rect.bar').length) \
                   .concat([Number(document.querySelector('#chart-per-day rect.bar:last-of-type')\
                     ?.getAttribute('data-value'))]);",
                vec![],
            )
            .await
            .ok()?;
        let n: Vec<i64> = serde_json::from_value(bars).ok()?;
        (n[0] == 7 && n[1] == 7 && n[2] == 7 && n[3] >= 1 && n[4] >= 1).then_some(())
    })
    .await;
    assert!(c.find(Locator::Css("#report-download")).await.is_ok());
    c.close().await.unwrap();
}
