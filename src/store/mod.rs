//! The database: one `Db` holding either a SQLite or a PostgreSQL pool,
//! migrations (ours, then the job queue's), and queries grouped by table.
//!
//! Queries are written once: the `on_db!`/`on_tx!` macros expand the same
//! `sqlx::query` code for each backend, so the dialect both share (`$1`
//! placeholders, `RETURNING`, `ON CONFLICT`) serves both, and the tests on
//! both catch drift.

pub mod call_intake;
pub mod events;
pub mod maintenance;
pub mod requests;
pub mod volunteers;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use events::{EventInput, append_event};

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction on either backend; River's `.tx` accepts the inner one.
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(PgTx),
}

/// Runs the same query code against whichever pool `Db` holds.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(pool) => {
                let $c = pool;
                $body
            }
            $crate::store::Db::Postgres(pool) => {
                let $c = pool;
                $body
            }
        }
    };
}

/// Runs the same query code inside whichever transaction `Tx` holds.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

pub type DbResult<T> = Result<T, sqlx::Error>;

impl Db {
    /// Opens the database named by `database.url`, creating a SQLite file and
    /// its folder when missing.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                // A ping on every checkout costs a round trip on each webhook.
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            return Ok(Db::Postgres(pool));
        }
        let path = sqlite_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("cannot create the database folder {}: {e}", dir.display())
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot open the SQLite database {}: {e}", path.display())
            })?;
        Ok(Db::Sqlite(pool))
    }

    /// Applies our migrations, then the job queue's.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::migrate!("migrations/sqlite").run(pool).await?;
                riverqueue::migrate::SqliteMigrator::new(pool.clone())
                    .migrate_up()
                    .await?;
            }
            Db::Postgres(pool) => {
                sqlx::migrate!("migrations/postgres").run(pool).await?;
                riverqueue::migrate::PostgresMigrator::new(pool.clone())
                    .migrate_up()
                    .await?;
            }
        }
        Ok(())
    }

    /// Begins a transaction that may write (`BEGIN IMMEDIATE` on SQLite, so a
    /// read-then-write cannot fail with `SQLITE_BUSY` under concurrent writers).
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => {
                // Wait for our turn here, in order, rather than in SQLite's busy
                // handler, which sleeps up to 100 ms between tries and made the
                // slowest webhooks wait hundreds of milliseconds under load.
                let turn = tokio::time::timeout(WRITE_TURN_WAIT, write_gate(pool).acquire_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?
                    .map_err(|_| sqlx::Error::PoolClosed)?;
                Tx::Sqlite(SqliteTx {
                    tx: riverqueue::database::begin_sqlite_write(pool).await?,
                    _turn: turn,
                })
            }
            Db::Postgres(pool) => Tx::Postgres(PgTx {
                tx: riverqueue::database::begin_postgres(pool).await?,
                newest_event: None,
            }),
        })
    }

    /// `/readyz`: can we reach the database right now?
    pub async fn ping(&self) -> bool {
        let r = on_db!(self, |c| sqlx::query("SELECT 1")
            .execute(c)
            .await
            .map(|_| ()));
        r.is_ok()
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    pub async fn close(&self) {
        on_db!(self, |c| c.close().await)
    }
}

/// As long as SQLite's own busy timeout: a writer that waits longer gets an error.
const WRITE_TURN_WAIT: Duration = Duration::from_secs(10);

/// One gate per SQLite file in this process: SQLite lets one writer in at a
/// time, and a queue in the process hands the lock on in arrival order.
fn write_gate(pool: &SqlitePool) -> std::sync::Arc<tokio::sync::Semaphore> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static GATES: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Semaphore>>>> = OnceLock::new();
    let file = pool.connect_options().get_filename().to_path_buf();
    let mut gates = GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    gates
        .entry(file)
        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1)))
        .clone()
}

/// A SQLite write transaction holding this process's turn to write.
pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl SqliteTx {
    /// The transaction itself, for River's transactional inserts.
    pub fn transaction(&mut self) -> &mut Transaction<'static, Sqlite> {
        &mut self.tx
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &sqlx::SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }
}

/// A PostgreSQL transaction that announces its newest event when it commits.
pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// The newest `events` row written in this transaction, if any.
    pub(crate) newest_event: Option<i64>,
}

impl PgTx {
    /// The transaction itself, for River's transactional inserts.
    pub fn transaction(&mut self) -> &mut Transaction<'static, Postgres> {
        &mut self.tx
    }
}

impl std::ops::Deref for PgTx {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &sqlx::PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }
}

impl Tx {
    pub async fn commit(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(t) => t.tx.commit().await,
            Tx::Postgres(mut t) => {
                // One notification per transaction, not per event: each costs a
                // round trip, and the live streams read every event after it anyway.
                if let Some(id) = t.newest_event {
                    sqlx::query("SELECT pg_notify('hotline580_events', $1)")
                        .bind(id.to_string())
                        .execute(&mut *t.tx)
                        .await?;
                }
                t.tx.commit().await
            }
        }
    }

    pub async fn rollback(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(t) => t.tx.rollback().await,
            Tx::Postgres(t) => t.tx.rollback().await,
        }
    }

    /// Notes an event written in this transaction (announced at commit on PostgreSQL).
    pub(crate) fn wrote_event(&mut self, id: i64) {
        if let Tx::Postgres(t) = self {
            t.newest_event = Some(t.newest_event.map_or(id, |n| n.max(id)));
        }
    }
}

/// `sqlite://data/x.db`, `sqlite:data/x.db` and `sqlite:///abs/x.db` name files.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| anyhow::anyhow!("`{url}` is not a sqlite:// URL"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() {
        anyhow::bail!("`{url}` names no file");
    }
    Ok(PathBuf::from(rest))
}

/// The current time as stored: Unix milliseconds.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A stored time as RFC 3339 for the API.
pub fn ms_to_rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Whether an error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_files() {
        assert_eq!(
            sqlite_path("sqlite://data/hotline580.db").unwrap(),
            PathBuf::from("data/hotline580.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            sqlite_path("sqlite:x.db?mode=rwc").unwrap(),
            PathBuf::from("x.db")
        );
        assert!(sqlite_path("sqlite://").is_err());
    }
}
