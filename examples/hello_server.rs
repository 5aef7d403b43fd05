//! The bare baseline for `tools/bench.sh`: an axum handler answering `POST /twilio/voice`
//! with fixed TwiML, reading nothing (not even the body's signature). What the machine
//! and the load tool allow, to compare the service with.
//! `cargo run --release --example hello_server -- 127.0.0.1:8590`

use axum::Router;
use axum::http::header;
use axum::routing::post;

const TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say language="zh-CN">您好</Say><Hangup/></Response>"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8590".to_string());
    let app = Router::new().route(
        "/twilio/voice",
        post(|| async { ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], TWIML) }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("hello server on {listen}");
    axum::serve(listener, app).await
}
