//! The pure parts of dispatch: parsing volunteers' SMS and ranking volunteers in memory.
//! Run with `cargo bench --bench dispatch_pure`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hotline580::config::ClockRange;
use hotline580::dispatch::{commands, keywords, matching};
use hotline580::domain::{Category, GeoPoint, Grade, Language};
use jiff::civil::Time;
use std::hint::black_box;
use std::time::Duration;

const BODIES: &[&str] = &[
    "YES 17",
    "ｙｅｓ　１７！",
    "接17",
    "完成 4711。",
    "stop",
    "POINTS",
    "I can come after lunch, is that ok?",
    "我下午三点以后有空，可以吗？",
];

fn parse_sms(c: &mut Criterion) {
    let mut g = c.benchmark_group("sms");
    g.bench_function("parse 8 bodies", |b| {
        b.iter(|| {
            for body in BODIES {
                black_box(commands::parse(black_box(body)));
            }
        })
    });
    g.bench_function("classify resident text", |b| {
        b.iter(|| keywords::classify(black_box("我想请人陪我去医院看病，顺便帮我取药")))
    });
    g.finish();
}

/// A deterministic spread of volunteers over a square of about 20 km around the centre.
fn candidates(n: usize) -> Vec<matching::Candidate> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let quiet = ClockRange::parse("22:00-07:00").unwrap();
    (0..n)
        .map(|i| {
            let r = next();
            let dn = ((r % 20_000) as f64 - 10_000.0) / 111_195.0;
            let de = (((r >> 16) % 20_000) as f64 - 10_000.0) / 96_700.0;
            matching::Candidate {
                id: i as i64,
                position: GeoPoint::new(29.563 + dn, 106.5516 + de).unwrap(),
                skills: if r >> 40 & 1 == 0 {
                    vec![Category::Repair, Category::Errands]
                } else {
                    vec![Category::Companion]
                },
                languages: if r >> 41 & 3 == 0 {
                    vec![Language::En]
                } else {
                    vec![Language::Zh]
                },
                available: r >> 43 & 7 != 0,
                opted_out: r >> 46 & 31 == 0,
                active_jobs: (r >> 51 & 1) as u32,
                max_active: 2,
                quiet_hours: Some(quiet),
                last_offered_at: (r >> 52 & 1 == 1).then_some((r >> 20 & 0xFFFF) as i64),
                already_offered: false,
            }
        })
        .collect()
}

fn rank(c: &mut Criterion) {
    let need = matching::Need {
        category: Category::Repair,
        grade: Grade::Yellow,
        position: GeoPoint::new(29.563, 106.5516).unwrap(),
        language: Language::Zh,
        radius_m: 2_000.0,
        local_time: Time::constant(14, 0, 0, 0),
    };
    let mut g = c.benchmark_group("rank 10");
    for n in [1_000, 10_000, 100_000] {
        let cs = candidates(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &cs, |b, cs| {
            b.iter(|| matching::rank(black_box(&need), black_box(cs), 10))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = parse_sms, rank
}
criterion_main!(benches);
