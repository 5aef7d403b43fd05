//! Matching against the database: the offer cascade's own query path
//! (`dispatch::cascade::choose`: the bounding-box query, then the ranking) picking 10
//! volunteers among 1,000 / 10,000 / 100,000, on SQLite and on PostgreSQL.
//! The PostgreSQL half uses `HOTLINE580_TEST_POSTGRES_URL`'s server (a database of its
//! own, dropped afterwards) and prints SKIP when it is unset.
//! Run with `cargo bench --bench dispatch_db`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hotline580::config::ClockRange;
use hotline580::dispatch::cascade;
use hotline580::dispatch::matching::Need;
use hotline580::domain::{Category, GeoPoint, Grade, Language};
use hotline580::store::Db;
use jiff::civil::Time;
use std::time::{Duration, Instant};

const CENTRE: (f64, f64) = (29.563, 106.5516);
/// Assigned requests already in the database (a busy month's worth).
const HISTORY: usize = 1_000;

/// The same deterministic spread as `dispatch_pure`: a square of about 20 km.
fn volunteer_values(n: usize) -> Vec<String> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let dn = ((r % 20_000) as f64 - 10_000.0) / 111_195.0;
            let de = (((r >> 16) % 20_000) as f64 - 10_000.0) / 96_700.0;
            let skills = if r >> 40 & 1 == 0 {
                "repair;errands"
            } else {
                "companion"
            };
            let languages = if r >> 41 & 3 == 0 { "en" } else { "zh" };
            let available = r >> 43 & 7 != 0;
            let opted_out = r >> 46 & 31 == 0;
            let last = if r >> 52 & 1 == 1 {
                ((r >> 20) & 0xFFFF).to_string()
            } else {
                "NULL".to_string()
            };
            format!(
                "('v{i}', '+8613{i:09}', {lat}, {lon}, '{skills}', '{languages}', {available}, {opted_out}, 2, {last}, 0, 0)",
                lat = CENTRE.0 + dn,
                lon = CENTRE.1 + de,
                available = if available { "TRUE" } else { "FALSE" },
                opted_out = if opted_out { "TRUE" } else { "FALSE" },
            )
        })
        .collect()
}

async fn exec(db: &Db, sql: String) {
    hotline580::on_db!(db, |c| sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .execute(c)
        .await
        .map(|_| ()))
    .expect("seed statement");
}

/// Seeds `n` volunteers, a resident, `HISTORY` assigned requests and the request to match.
async fn seed(db: &Db, n: usize) -> i64 {
    for chunk in volunteer_values(n).chunks(1_000) {
        exec(
            db,
            format!(
                "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, available, opted_out, \
                 max_active, last_offered_at, created_at, updated_at) VALUES {}",
                chunk.join(",")
            ),
        )
        .await;
    }
    exec(
        db,
        format!(
            "INSERT INTO residents (name, phone, address, lat, lon, language, created_at, updated_at) \
             VALUES ('r', '+8613800000001', 'a', {}, {}, 'zh', 0, 0)",
            CENTRE.0, CENTRE.1
        ),
    )
    .await;
    let history: Vec<String> = (0..HISTORY)
        .map(|i| {
            format!(
                "('assigned', 'repair', 'yellow', 'voice', 1, {}, 0, 0)",
                1 + (i * 7919) % n
            )
        })
        .collect();
    exec(
        db,
        format!(
            "INSERT INTO requests (status, category, grade, channel, resident_id, volunteer_id, created_at, updated_at) VALUES {}",
            history.join(",")
        ),
    )
    .await;
    exec(
        db,
        "INSERT INTO requests (status, category, grade, channel, resident_id, created_at, updated_at) \
         VALUES ('offering', 'repair', 'yellow', 'voice', 1, 0, 0)"
            .to_string(),
    )
    .await;
    let id: i64 = hotline580::on_db!(db, |c| sqlx::query_scalar("SELECT MAX(id) FROM requests")
        .fetch_one(c)
        .await)
    .unwrap();
    if let Db::Postgres(pool) = db {
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    } else if let Db::Sqlite(pool) = db {
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    }
    id
}

fn need() -> Need {
    Need {
        category: Category::Repair,
        grade: Grade::Yellow,
        position: GeoPoint::new(CENTRE.0, CENTRE.1).unwrap(),
        language: Language::Zh,
        radius_m: 2_000.0,
        local_time: Time::constant(14, 0, 0, 0),
    }
}

fn bench_backend(
    c: &mut Criterion,
    name: &str,
    url_for: &dyn Fn(usize) -> (String, Box<dyn Fn()>),
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let quiet = ClockRange::parse("22:00-07:00").ok();
    let need = need();
    let mut g = c.benchmark_group(format!("choose 10 ({name})"));
    for n in [1_000, 10_000, 100_000] {
        let (url, cleanup) = url_for(n);
        let (db, request_id) = rt.block_on(async {
            let db = Db::connect(&url).await.expect("connect");
            db.migrate().await.expect("migrate");
            let id = seed(&db, n).await;
            (db, id)
        });
        let found = rt.block_on(async {
            let mut tx = db.begin().await.unwrap();
            let chosen = cascade::choose(&mut tx, request_id, &need, quiet, 10)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            chosen.len()
        });
        assert_eq!(found, 10, "the bench must find ten");
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    // Inside one transaction, as the cascade runs it.
                    let mut tx = db.begin().await.unwrap();
                    let start = Instant::now();
                    for _ in 0..iters {
                        let chosen = cascade::choose(&mut tx, request_id, &need, quiet, 10)
                            .await
                            .unwrap();
                        std::hint::black_box(chosen);
                    }
                    let took = start.elapsed();
                    tx.rollback().await.unwrap();
                    took
                })
            })
        });
        rt.block_on(db.close());
        cleanup();
    }
    g.finish();
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    bench_backend(c, "SQLite", &|n| {
        (
            format!("sqlite://{}", path.join(format!("bench{n}.db")).display()),
            Box::new(|| {}),
        )
    });
}

fn postgres(c: &mut Criterion) {
    let Some(admin) = std::env::var("HOTLINE580_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("SKIP choose 10 (PostgreSQL): HOTLINE580_TEST_POSTGRES_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    bench_backend(c, "PostgreSQL", &|n| {
        let name = format!("hotline580_bench_{n}_{}", std::process::id());
        let admin2 = admin.clone();
        let name2 = name.clone();
        let run = |sql: String| {
            let admin = admin.clone();
            rt.block_on(async move {
                let pool = sqlx::PgPool::connect(&admin)
                    .await
                    .expect("PostgreSQL server");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .expect("admin statement");
                pool.close().await;
            })
        };
        run(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        run(format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        let url = format!("{base}/{name}");
        let cleanup = move || {
            let admin = admin2.clone();
            let name = name2.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let pool = sqlx::PgPool::connect(&admin).await.unwrap();
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&pool)
                        .await;
                        pool.close().await;
                    })
            })
            .join()
            .unwrap();
        };
        (url, Box::new(cleanup) as Box<dyn Fn()>)
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = sqlite, postgres
}
criterion_main!(benches);
