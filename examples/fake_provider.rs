//! A tiny stand-in for Twilio's REST API for `tools/bench.sh`: answers
//! `POST /2010-04-01/Accounts/{sid}/Messages.json` and `Calls.json` with 201 and a fresh
//! SID, and logs each receipt as `<unix ms> <resource> <To>` to standard output.
//! `cargo run --release --example fake_provider -- 127.0.0.1:8591`

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Form, Json, Router};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);

async fn create(
    Path((account, resource)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let to = form.get("To").cloned().unwrap_or_default();
    let _ = writeln!(std::io::stdout().lock(), "{now} {resource} {to}");
    let prefix = if resource == "Calls.json" { "CA" } else { "SM" };
    let sid = format!("{prefix}{:032x}", NEXT.fetch_add(1, Ordering::Relaxed));
    (
        StatusCode::CREATED,
        Json(
            serde_json::json!({ "sid": sid, "account_sid": account, "status": "queued", "to": to }),
        ),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8591".to_string());
    let app = Router::new().route("/2010-04-01/Accounts/{account}/{resource}", post(create));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("fake provider on {listen}");
    axum::serve(listener, app).await
}
