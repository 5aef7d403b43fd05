//! The board's map over a configured tile server, in headless Chromium
//! (`chromedriver`, path in `HOTLINE580_TEST_CHROMEDRIVER`): the tiles are SVG
//! `<image>`s under the dots, and each volunteer's dot lies on the tile that
//! Web Mercator puts them on. The tile server is a closed local port: only the
//! drawing is checked, no image needs to load.

mod common;

use common::{Backend, TestApp};
use fantoccini::{ClientBuilder, Locator};
use hotline580::domain::Role;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
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

/// The XYZ tile holding a point at zoom `z` (the slippy-map formula).
fn tile_of(lat: f64, lon: f64, z: u32) -> (u64, u64) {
    let n = 2f64.powi(z as i32);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u64;
    let la = lat.to_radians();
    let y =
        ((1.0 - (la.tan() + 1.0 / la.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as u64;
    (x, y)
}

#[tokio::test]
async fn tiles_are_drawn_under_the_dots_where_mercator_puts_them() {
    let Ok(driver_path) = std::env::var("HOTLINE580_TEST_CHROMEDRIVER") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP tiles_are_drawn_under_the_dots_where_mercator_puts_them: HOTLINE580_TEST_CHROMEDRIVER is not set"
        );
        return;
    };
    let closed = free_port();
    let template = format!("http://127.0.0.1:{closed}/{{z}}/{{x}}/{{y}}.png");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("HOTLINE580__CONSOLE__MAP_TILES", template.as_str())],
    )
    .await;
    let volunteers = [
        (29.5610, 106.5710),
        (29.5700, 106.5800),
        (29.5520, 106.5650),
    ];
    for (i, (lat, lon)) in volunteers.iter().enumerate() {
        hotline580::on_db!(&app.state.db, |c| sqlx::query(
            "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'errands', 'zh', 1, 0, 0)"
        )
        .bind(format!("v{i}"))
        .bind(format!("+86139000000{i:02}"))
        .bind(lat)
        .bind(lon)
        .execute(c)
        .await
        .map(|_| ()))
        .unwrap();
    }
    hotline580::auth::create_operator(&app.state.db, "alice", PASSWORD, Role::Operator)
        .await
        .unwrap();

    let port = free_port();
    let _driver = Driver(
        Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_path}: {e}")),
    );
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    let mut opts = json!({ "args": [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--no-first-run", "--window-size=1400,1000",
        format!("--user-data-dir={}", profile.path().display()),
    ]});
    if let Ok(bin) = std::env::var("HOTLINE580_TEST_CHROMIUM") {
        opts["binary"] = json!(bin);
    }
    caps.insert("goog:chromeOptions".into(), opts);
    let c = ClientBuilder::rustls()
        .expect("TLS setup")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");

    c.goto(&app.url("/console/login")).await.unwrap();
    for (css, text) in [("#username", "alice"), ("#password", PASSWORD)] {
        c.find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Css("#login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#board-map circle.vol"))
        .await
        .expect("the map's dots");

    // For every dot: the tile under its centre, and whether all tiles come
    // before the first dot (SVG paints in document order: tiles underneath).
    let got = c
        .execute(
            r#"const svg = document.querySelector('#board-map svg');
               const tiles = [...svg.querySelectorAll('image.map-tile')];
               const first = svg.querySelector('circle.vol');
               const under = tiles.every((t) => t.compareDocumentPosition(first) & Node.DOCUMENT_POSITION_FOLLOWING);
               const hrefs = tiles.map((t) => t.getAttribute('href'));
               const dots = [...svg.querySelectorAll('circle.vol')].map((d) => {
                 const x = +d.getAttribute('cx'), y = +d.getAttribute('cy');
                 const t = tiles.find((t) => { const tx = +t.getAttribute('x'), ty = +t.getAttribute('y');
                   return x >= tx && x < tx + 256 && y >= ty && y < ty + 256; });
                 return [+d.getAttribute('data-volunteer'), t ? t.getAttribute('data-tile') : null];
               });
               return [under, hrefs, dots];"#,
            vec![],
        )
        .await
        .unwrap();
    let _ = c.close().await;
    let under = got[0].as_bool().unwrap();
    let hrefs: Vec<String> = serde_json::from_value(got[1].clone()).unwrap();
    let dots: Vec<(i64, Option<String>)> = serde_json::from_value(got[2].clone()).unwrap();
    assert!(!hrefs.is_empty(), "tiles are drawn");
    assert!(under, "the tiles are under the dots");
    let prefix = format!("http://127.0.0.1:{closed}/");
    let z: u32 = hrefs[0]
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split('/').next())
        .and_then(|z| z.parse().ok())
        .unwrap_or_else(|| panic!("a tile URL from the template: {}", hrefs[0]));
    // Three dots some 2 km apart on a board-sized map: a street-level zoom.
    assert!((12..=17).contains(&z), "zoom {z}");
    for h in &hrefs {
        let (tx, ty) = (h.split('/').nth(4).unwrap(), h.split('/').nth(5).unwrap());
        assert!(h.starts_with(&format!("{prefix}{z}/")), "{h}");
        assert!(
            tx.parse::<u64>().is_ok() && ty.trim_end_matches(".png").parse::<u64>().is_ok(),
            "{h}"
        );
    }
    assert_eq!(dots.len(), volunteers.len());
    for (id, tile) in dots {
        let (lat, lon) = volunteers[(id - 1) as usize];
        let (x, y) = tile_of(lat, lon, z);
        assert_eq!(
            tile.as_deref(),
            Some(format!("{z}/{x}/{y}").as_str()),
            "volunteer {id} at {lat},{lon}"
        );
    }
}
