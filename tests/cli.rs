//! The command line, run as a person would: imports and console logins.

mod common;
use common::{Backend, TestDb};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .args(args)
        .env("HOTLINE580__DATABASE__URL", &db.url)
        .env("HOTLINE580__LOG__LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn count(db: &TestDb, table: &str) -> i64 {
    let store = hotline580::store::Db::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let sql = match table {
        "volunteers" => "SELECT COUNT(*) FROM volunteers",
        "residents" => "SELECT COUNT(*) FROM residents",
        _ => "SELECT COUNT(*) FROM operators",
    };
    let n: i64 =
        hotline580::on_db!(&store, |c| sqlx::query_scalar(sql).fetch_one(c).await).unwrap();
    store.close().await;
    n
}

fn write_file(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

async fn a_bad_row_names_its_line_and_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(
        &dir,
        "volunteers.csv",
        "name,phone,lat,lon,skills,languages,max_active\nA,13800138001,29.5,106.5,repair,zh,1\nB,13800138002,99,106.5,repair,zh,1\nC,13800138003,29.5,106.5,errands,,\n",
    );
    let o = run(&db, &["import", "volunteers", &f], "");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("line 3"), "{}", text(&o));
    assert!(text(&o).contains("nothing was written"), "{}", text(&o));
    assert_eq!(count(&db, "volunteers").await, 0);
}

async fn an_import_upserts_by_phone_and_keeps_availability(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let first = write_file(
        &dir,
        "v1.csv",
        "name,phone,lat,lon,skills,languages,max_active\n王芳,13800138001,29.5,106.5,repair,zh,1\nLi,13800138002,29.6,106.6,errands,en,2\n",
    );
    let o = run(&db, &["import", "volunteers", &first], "");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 inserted, 0 updated"), "{}", text(&o));
    // An operator switches one volunteer off; a re-import must keep that.
    let store = hotline580::store::Db::connect(&db.url).await.unwrap();
    hotline580::on_db!(&store, |c| sqlx::query(
        "UPDATE volunteers SET available = FALSE, points = 7 WHERE phone = '+8613800138001'"
    )
    .execute(c)
    .await
    .map(|_| ()))
    .unwrap();
    let second = write_file(
        &dir,
        "v2.csv",
        "name,phone,lat,lon,skills,languages,max_active\n王芳芳,+86 138 0013 8001,29.5,106.5,repair;escort,zh,1\nNew,13800138003,29.6,106.6,errands,,\n",
    );
    let o = run(&db, &["import", "volunteers", &second], "");
    assert!(text(&o).contains("1 inserted, 1 updated"), "{}", text(&o));
    let row: (String, String, bool, i64) = hotline580::on_db!(&store, |c| sqlx::query_as(
        "SELECT name, skills, available, points FROM volunteers WHERE phone = '+8613800138001'"
    )
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(
        row,
        ("王芳芳".to_string(), "repair;escort".to_string(), false, 7)
    );
    store.close().await;
    assert_eq!(count(&db, "volunteers").await, 3);
}

async fn a_dry_run_validates_and_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(
        &dir,
        "residents.csv",
        "name,phone,address,lat,lon,language,grid,contact\n张大爷,02363580001,解放碑1号,29.55,106.57,zh,A1,call\n",
    );
    let o = run(&db, &["import", "residents", &f, "--dry-run"], "");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&db, "residents").await, 0);
    let o = run(&db, &["import", "residents", &f], "");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&db, "residents").await, 1);
}

async fn a_hundred_thousand_volunteers_import_in_one_go(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("name,phone,lat,lon,skills,languages,max_active\n");
    for i in 0..100_000u32 {
        body.push_str(&format!(
            "V{i},139{i:08},{:.5},{:.5},repair;errands,zh,1\n",
            29.5 + (i % 1000) as f64 * 0.0001,
            106.5 + (i / 1000) as f64 * 0.0001
        ));
    }
    let f = write_file(&dir, "big.csv", &body);
    let o = run(&db, &["import", "volunteers", &f], "");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("100000 inserted"), "{}", text(&o));
    assert_eq!(count(&db, "volunteers").await, 100_000);
}

async fn operator_add_reads_the_password_from_stdin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let o = run(
        &db,
        &["operator", "add", "alice", "--role", "admin"],
        "s3cret pass\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&db, &["operator", "add", "alice"], "other\n");
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    let o = run(&db, &["operator", "add", "bob"], "\n");
    assert!(!o.status.success());
    assert!(text(&o).contains("password is empty"), "{}", text(&o));
    assert_eq!(count(&db, "operators").await, 1);
    let store = hotline580::store::Db::connect(&db.url).await.unwrap();
    let op = hotline580::auth::find_operator(&store, "alice")
        .await
        .unwrap()
        .unwrap();
    assert!(hotline580::auth::verify_password(
        "s3cret pass",
        &op.password_hash
    ));
    assert_eq!(op.role, "admin");
    store.close().await;
}

on_both_backends!(
    a_bad_row_names_its_line_and_writes_nothing,
    an_import_upserts_by_phone_and_keeps_availability,
    a_dry_run_validates_and_writes_nothing,
    a_hundred_thousand_volunteers_import_in_one_go,
    operator_add_reads_the_password_from_stdin,
);

#[test]
fn a_bad_configuration_names_the_key() {
    let o = Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .arg("migrate")
        .env("HOTLINE580__TELEPHONY__PROVIDER", "carrier-pigeon")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("provider"), "{}", text(&o));
}

#[test]
fn scripts_check_accepts_the_shipped_script_and_names_file_and_line_of_errors() {
    let o = Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .args([
            "scripts",
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/ivr-scripts"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/ivr-scripts/default.toml"
    ))
    .unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        format!("{shipped}\n[[[not toml"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hotline580"))
        .args(["scripts", "check", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("broken.toml:"), "{}", text(&o));
}
