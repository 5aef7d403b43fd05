//! One IVR step with its TwiML rendering (the pure work of every voice webhook), on the
//! shipped default script. Run with `cargo bench --bench ivr_step`.

use criterion::{Criterion, criterion_group, criterion_main};
use hotline580::domain::Language;
use hotline580::ivr::{self, CallState, Input, KnownCaller, StepContext};
use std::hint::black_box;
use std::time::Duration;

fn steps(c: &mut Criterion) {
    let script = ivr::parse_script("default.toml", ivr::DEFAULT_SCRIPT).expect("valid script");
    let ctx = StepContext {
        staffed: true,
        operators_phone: Some("+8613600000000".into()),
        emergency_number: "120".into(),
        action_base: "/twilio/voice/step".into(),
    };
    let start = Input::Start {
        known: Some(KnownCaller {
            name: "张大爷".into(),
            language: Language::Zh,
            address: Some("解放碑1号".into()),
        }),
    };
    let greeted = ivr::step(&script, &CallState::default(), &start, &ctx).state;
    let at_menu = ivr::step(&script, &greeted, &Input::Digits("1".into()), &ctx).state;
    let mut g = c.benchmark_group("ivr step + render");
    g.bench_function("new call: greeting by name", |b| {
        b.iter(|| {
            let r = ivr::step(
                &script,
                black_box(&CallState::default()),
                black_box(&start),
                &ctx,
            );
            ivr::render(&r.actions)
        })
    });
    g.bench_function("menu: key 1 (classify, then record)", |b| {
        let input = Input::Digits("1".into());
        b.iter(|| {
            let r = ivr::step(&script, black_box(&at_menu), black_box(&input), &ctx);
            ivr::render(&r.actions)
        })
    });
    g.bench_function("menu: speech 水管漏水", |b| {
        let input = Input::Speech("我家水管漏水了".into());
        b.iter(|| {
            let r = ivr::step(&script, black_box(&at_menu), black_box(&input), &ctx);
            ivr::render(&r.actions)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = steps
}
criterion_main!(benches);
