//! Test harness: the real service on a random loopback port with its own
//! database (a temporary SQLite file, or a fresh PostgreSQL database when
//! `HOTLINE580_TEST_POSTGRES_URL` is set, dropped afterwards).
#![allow(dead_code)]

use hotline580::app::{AppState, Application};
use hotline580::config::Config;
use std::path::Path;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from `async fn name(backend: Backend)`.
/// The PostgreSQL one prints `SKIP` and passes when no server is configured.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !$crate::common::postgres_available(stringify!($name)) {
                        return;
                    }
                    super::$name($crate::common::Backend::Postgres).await
                }
            )+
        }
    };
}

pub fn postgres_available(test: &str) -> bool {
    if std::env::var("HOTLINE580_TEST_POSTGRES_URL")
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        // Written past the test harness's capture, so a skip is always seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test} on PostgreSQL: HOTLINE580_TEST_POSTGRES_URL is not set"
        );
        return false;
    }
    true
}

/// A database of the test's own; a PostgreSQL one is dropped when this is dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>, // admin URL, database name
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}",
                    dir.path().join("data/hotline580.db").display()
                );
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("HOTLINE580_TEST_POSTGRES_URL")
                    .expect("HOTLINE580_TEST_POSTGRES_URL");
                let name = format!("hotline580_test_{}", rand::random::<u64>());
                let conn = sqlx::PgPool::connect(&admin)
                    .await
                    .expect("connect to the PostgreSQL test server");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&conn)
                    .await
                    .expect("create test database");
                conn.close().await;
                let url = replace_db_name(&admin, &name);
                TestDb {
                    url,
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// Another handle on a database someone else owns (a second instance's).
    pub fn shared(url: &str) -> TestDb {
        TestDb {
            url: url.to_string(),
            _dir: None,
            pg: None,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self._dir.as_ref().map(|d| d.path())
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{base}/{name}{query}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Async drop is not available: drop the database from a helper thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(conn) = sqlx::PgPool::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&conn)
                        .await;
                        conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

pub const ACCOUNT_SID: &str = "ACtest00000000000000000000000000";
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789";
pub const PUBLIC_URL: &str = "http://hotline.test";

/// The environment a test service runs with; tests add their own pairs.
pub fn base_env(db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("HOTLINE580__DATABASE__URL".into(), db.url.clone()),
        ("HOTLINE580__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
        ("HOTLINE580__SERVER__PUBLIC_URL".into(), PUBLIC_URL.into()),
        ("HOTLINE580__LOG__LEVEL".into(), "warn".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

pub fn config_from(env: &[(String, String)]) -> Config {
    Config::load_from(None, env, Path::new("/nonexistent/default.toml"))
        .expect("test configuration is valid")
}

/// A running service and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub db: TestDb,
    server: Option<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        let db = TestDb::new(backend).await;
        Self::spawn_on(db, extra).await
    }

    pub async fn spawn_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
        let config = config_from(&base_env(&db, extra));
        hotline580::telemetry::init(&config.settings.log);
        let app = Application::build(config)
            .await
            .expect("the service starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .expect("the service runs");
        });
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        TestApp {
            address,
            state,
            client,
            db,
            server: Some(server),
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Stops the service gracefully and returns its database for a restart.
    pub async fn stop(mut self) -> TestDb {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
        std::mem::replace(
            &mut self.db,
            TestDb {
                url: String::new(),
                _dir: None,
                pg: None,
            },
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// POSTs a webhook signed as Twilio signs it (for `PUBLIC_URL` with `AUTH_TOKEN`);
/// the answer's status and body.
pub async fn post_signed(
    app: &TestApp,
    path_and_query: &str,
    params: &[(&str, &str)],
) -> (u16, String) {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = hotline580::telephony::signature::expected_signature(
        AUTH_TOKEN,
        &format!("{PUBLIC_URL}{path_and_query}"),
        &owned,
    );
    let r = app
        .client
        .post(app.url(path_and_query))
        .header("X-Twilio-Signature", sig)
        .form(&owned)
        .send()
        .await
        .expect("request sent");
    (r.status().as_u16(), r.text().await.expect("a body"))
}
