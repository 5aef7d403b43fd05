//! `hotline580 demo` run as a newcomer would: it starts with no configuration,
//! seeds a neighbourhood the console can read, and cleans up after itself.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_demo_serves_a_seeded_neighbourhood_and_removes_its_database_at_the_end() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let workdir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .arg("demo")
        // An empty folder: no config/, no ivr-scripts/; the binary carries what it needs.
        .current_dir(workdir.path())
        .env("HOTLINE580__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HOTLINE580__SERVER__PUBLIC_URL", &base)
        .env("HOTLINE580__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let last = line.starts_with("Ctrl-C");
            seen.push(line);
            if last {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    let printed = lines.join("\n");
    assert!(printed.contains(&format!("{base}/console")), "{printed}");
    assert!(printed.contains("demo / demo580"), "{printed}");
    let database = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("database"))
        .map(|p| std::path::PathBuf::from(p.trim()))
        .expect("the demo names its database");
    assert!(database.exists());

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = client
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"username": "demo", "password": "demo580"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let volunteers: Vec<serde_json::Value> = client
        .get(format!("{base}/api/volunteers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(volunteers.len(), 300);
    assert!(volunteers.iter().any(|v| v["points"].as_i64().unwrap() > 0));
    let requests: Vec<serde_json::Value> = client
        .get(format!("{base}/api/requests?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requests.len(), 240);
    let rated: Vec<i64> = requests
        .iter()
        .filter_map(|r| r["rating"].as_i64())
        .collect();
    let satisfied = rated.iter().filter(|r| **r >= 4).count();
    assert!(satisfied * 100 / rated.len() >= 90);
    // The newest request is of the past month, with its whole story.
    let id = requests[0]["id"].as_i64().unwrap();
    let one: serde_json::Value = client
        .get(format!("{base}/api/requests/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(one["events"].as_array().unwrap().len() >= 2, "{one}");

    // Ctrl-C (SIGTERM here) stops it and deletes the throwaway database.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!database.exists(), "{} is left behind", database.display());
}
