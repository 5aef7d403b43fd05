//! The load generator of `tools/bench.sh`: signed `POST /twilio/voice` new calls, each
//! with its own `CallSid` and signed for its own body before the clock starts, over
//! keep-alive HTTP/1.1 connections of its own (a small client, so the tool costs the
//! same for the bare server and for ours).
//!
//! - `closed`: N connections send as fast as answers come back (maximum throughput).
//! - `open`: a fixed rate; latency counts from when each request was due, so a slow
//!   answer that delays the next one is not hidden (no coordinated omission).
//! - `storm`: complete calls (greeting, address confirmed, key 1, a recording, the
//!   call's end) started evenly over a period, every webhook signed and timed.
//!
//! Each prints one line of `key=value` pairs.
//! `cargo run --release --example loadgen -- closed --target http://127.0.0.1:8580 …`

use clap::{Args, Parser, Subcommand};
use hotline580::telephony::signature::expected_signature;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Closed {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        duration: u64,
    },
    Open {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        duration: u64,
    },
    Storm {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        calls: usize,
        /// Seconds over which the calls start.
        #[arg(long, default_value_t = 60)]
        over: u64,
        /// Pause between a call's webhooks (the caller listening and pressing).
        #[arg(long, default_value_t = 500)]
        think_ms: u64,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Where to connect, e.g. http://127.0.0.1:8580
    #[arg(long)]
    target: String,
    /// `server.public_url` of the service (signatures are computed over it).
    #[arg(long)]
    public_url: String,
    #[arg(long, env = "HOTLINE580__TWILIO__AUTH_TOKEN")]
    token: String,
    /// The caller: a known resident's number.
    #[arg(long, default_value = "+8613800000001")]
    from: String,
    /// Prefix of the CallSids (distinct per run, so runs do not replay each other).
    #[arg(long, default_value = "CAload")]
    prefix: String,
}

/// One request ready to write: the whole HTTP/1.1 message.
fn request(c: &Common, path: &str, params: &[(String, String)]) -> Vec<u8> {
    let sig = expected_signature(&c.token, &format!("{}{path}", c.public_url), params);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let host = c.target.trim_start_matches("http://");
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-Twilio-Signature: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn new_call(c: &Common, i: usize) -> Vec<u8> {
    request(
        c,
        "/twilio/voice",
        &[
            ("CallSid".into(), format!("{}{i:010}", c.prefix)),
            ("From".into(), c.from.clone()),
            ("To".into(), "+862363580580".into()),
            ("AccountSid".into(), "ACload".into()),
            ("CallStatus".into(), "ringing".into()),
        ],
    )
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(target: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(target.trim_start_matches("http://")).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends one request and reads its answer: (status, body).
    async fn send(&mut self, req: &[u8]) -> std::io::Result<(u16, String)> {
        self.stream.write_all(req).await?;
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        let (head_end, status, len) = loop {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..i]).to_ascii_lowercase();
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                break (i + 4, status, len);
            }
        };
        while self.buf.len() < head_end + len {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&self.buf[head_end..head_end + len]).into_owned();
        Ok((status, body))
    }
}

/// Microsecond latencies → `p50_ms=… p99_ms=… max_ms=…`.
fn percentiles(mut us: Vec<u64>) -> String {
    if us.is_empty() {
        return "p50_ms=NaN p99_ms=NaN max_ms=NaN".into();
    }
    us.sort_unstable();
    let at =
        |q: f64| us[((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1] as f64 / 1000.0;
    format!(
        "p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        at(0.50),
        at(0.90),
        at(0.99),
        *us.last().unwrap() as f64 / 1000.0
    )
}

fn good_twiml(status: u16, body: &str) -> bool {
    // Our apology ("系统暂时出了问题") means something failed inside.
    status == 200 && body.contains("<Response") && !body.contains("系统暂时出了问题")
}

async fn closed(c: Common, connections: usize, duration: u64) {
    let pool = 200_000usize;
    let reqs: Arc<Vec<Vec<u8>>> = Arc::new((0..pool).map(|i| new_call(&c, i)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(duration);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (reqs, next, target) = (reqs.clone(), next.clone(), c.target.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut conn = Conn::open(&target).await.expect("connect");
            while Instant::now() < end {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match conn.send(&reqs[i % reqs.len()]).await {
                    Ok((s, b)) if good_twiml(s, &b) => lat.push(t.elapsed().as_micros() as u64),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(&target).await.expect("reconnect");
                    }
                }
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    let sent = next.load(Ordering::Relaxed);
    println!(
        "mode=closed connections={connections} requests={} errors={errors} throughput={:.0} repeated_sids={} {}",
        lat.len(),
        lat.len() as f64 / secs,
        sent.saturating_sub(pool),
        percentiles(lat)
    );
}

async fn open(c: Common, rate: u64, connections: usize, duration: u64) {
    let total = (rate * duration) as usize;
    let reqs: Arc<Vec<Vec<u8>>> = Arc::new((0..total).map(|i| new_call(&c, i)).collect());
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for k in 0..connections {
        let (reqs, target) = (reqs.clone(), c.target.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut conn = Conn::open(&target).await.expect("connect");
            let mut i = k;
            while i < reqs.len() {
                let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
                tokio::time::sleep_until(due).await;
                match conn.send(&reqs[i]).await {
                    Ok((s, b)) if good_twiml(s, &b) => lat.push(due.elapsed().as_micros() as u64),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(&target).await.expect("reconnect");
                    }
                }
                i += connections;
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "mode=open rate={rate} requests={} errors={errors} achieved={:.0} {}",
        lat.len(),
        lat.len() as f64 / secs,
        percentiles(lat)
    );
}

/// The `seq` the TwiML's next step posts to.
fn next_seq(twiml: &str) -> Option<String> {
    let i = twiml.find("seq=")?;
    Some(
        twiml[i + 4..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect(),
    )
}

async fn one_call(c: &Common, i: usize, think: Duration) -> (Vec<u64>, u64) {
    let sid = format!("{}{i:010}", c.prefix);
    let base = |extra: &[(&str, &str)]| {
        let mut p: Vec<(String, String)> = vec![
            ("CallSid".into(), sid.clone()),
            ("From".into(), c.from.clone()),
            ("To".into(), "+862363580580".into()),
        ];
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    };
    let mut lat = Vec::new();
    let Ok(mut conn) = Conn::open(&c.target).await else {
        return (lat, 1);
    };
    let rec = format!("https://api.twilio.com/rec/RE{i}");
    let steps: [&[(&str, &str)]; 3] = [
        &[("Digits", "1")],
        &[("Digits", "1")],
        &[("RecordingUrl", rec.as_str()), ("RecordingDuration", "6")],
    ];
    let mut req = request(c, "/twilio/voice", &base(&[]));
    for k in 0..=steps.len() {
        let t = Instant::now();
        let (status, body) = match conn.send(&req).await {
            Ok(r) => r,
            Err(_) => return (lat, 1),
        };
        lat.push(t.elapsed().as_micros() as u64);
        if !good_twiml(status, &body) {
            return (lat, 1);
        }
        if k == steps.len() {
            break;
        }
        let Some(seq) = next_seq(&body) else {
            return (lat, 1);
        };
        tokio::time::sleep(think).await;
        req = request(c, &format!("/twilio/voice/step?seq={seq}"), &base(steps[k]));
    }
    // Twilio tells us the call ended.
    let end = request(
        c,
        "/twilio/status",
        &base(&[("CallStatus", "completed"), ("CallDuration", "40")]),
    );
    let t = Instant::now();
    match conn.send(&end).await {
        Ok((200, _)) => {
            lat.push(t.elapsed().as_micros() as u64);
            (lat, 0)
        }
        _ => (lat, 1),
    }
}

async fn storm(c: Common, calls: usize, over: u64, think_ms: u64) {
    let c = Arc::new(c);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..calls {
        let c = c.clone();
        let due = start + Duration::from_nanos(i as u64 * over * 1_000_000_000 / calls as u64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            one_call(&c, i, Duration::from_millis(think_ms)).await
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    println!(
        "mode=storm calls={calls} seconds={:.1} webhooks={} failed_calls={errors} {}",
        start.elapsed().as_secs_f64(),
        lat.len(),
        percentiles(lat)
    );
}

fn main() {
    let cli = Cli::parse();
    // Two threads: the machine has two cores and the service under test needs them too.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match cli.mode {
            Mode::Closed {
                common,
                connections,
                duration,
            } => closed(common, connections, duration).await,
            Mode::Open {
                common,
                rate,
                connections,
                duration,
            } => open(common, rate, connections, duration).await,
            Mode::Storm {
                common,
                calls,
                over,
                think_ms,
            } => storm(common, calls, over, think_ms).await,
        }
    });
}
