use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_from(None, &env(pairs), Path::new("/nonexistent/default.toml"))
}

#[test]
fn defaults_match_the_contract() {
    let c = load(&[]).unwrap();
    let s = &c.settings;
    assert_eq!(s.server.listen, "127.0.0.1:8580");
    assert_eq!(s.database.url, "sqlite://data/hotline580.db");
    assert_eq!(s.telephony.provider, ProviderKind::Simulated);
    assert_eq!(c.hotline_number.as_str(), "+862363580580");
    assert_eq!(s.dispatch.offer_timeout_secs, 180);
    assert_eq!(s.dispatch.wave_sizes.size(Grade::Red, 1), 3);
    assert_eq!(s.dispatch.wave_sizes.size(Grade::Yellow, 1), 1);
    assert_eq!(s.dispatch.wave_sizes.size(Grade::Yellow, 4), 3);
    assert_eq!(s.dispatch.wave_sizes.size(Grade::Yellow, 7), 3);
    assert_eq!(s.dispatch.radius_m(1), 2000.0);
    assert_eq!(s.dispatch.radius_m(9), 10_000.0);
    assert_eq!(s.sla.accept_secs(Grade::Blue), 28_800);
    assert!(c.quiet_hours.is_some());
    assert_eq!(s.emergency.number, "120");
}

#[test]
fn the_environment_wins_and_phone_numbers_keep_their_plus() {
    let c = load(&[
        ("HOTLINE580__OPERATORS__PHONE", "+8613800138000"),
        ("HOTLINE580__DISPATCH__OFFER_TIMEOUT_SECS", "5"),
        ("HOTLINE580__DISPATCH__RADIUS_KM", "[1, 3]"),
        ("HOTLINE580__TWILIO__VALIDATE_SIGNATURES", "false"),
    ])
    .unwrap();
    assert_eq!(c.operators_phone.unwrap().as_str(), "+8613800138000");
    assert_eq!(c.settings.dispatch.offer_timeout_secs, 5);
    assert_eq!(c.settings.dispatch.radius_m(2), 3000.0);
    assert!(!c.settings.twilio.validate_signatures);
}

#[test]
fn a_file_given_with_config_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(
        &f,
        "[server]\nlisten = \"127.0.0.1:9999\"\n[dispatch.wave_sizes]\nred = [5]\n",
    )
    .unwrap();
    let c = Config::load_from(Some(&f), &[], Path::new("/nonexistent")).unwrap();
    assert_eq!(c.settings.server.listen, "127.0.0.1:9999");
    assert_eq!(c.settings.dispatch.wave_sizes.size(Grade::Red, 1), 5);
    // The environment still wins over the file.
    let c = Config::load_from(
        Some(&f),
        &env(&[("HOTLINE580__SERVER__LISTEN", "127.0.0.1:7777")]),
        Path::new("/x"),
    )
    .unwrap();
    assert_eq!(c.settings.server.listen, "127.0.0.1:7777");
}

fn key_of(e: ConfigError) -> String {
    match e {
        ConfigError::Invalid { key, .. } => key,
        ConfigError::Load(m) => m,
    }
}

#[test]
fn bad_values_stop_with_the_key_named() {
    let cases: &[(&str, &str, &str)] = &[
        ("HOTLINE580__TELEPHONY__PROVIDER", "nexmo", "provider"),
        (
            "HOTLINE580__SERVER__PUBLIC_URL",
            "not a url",
            "server.public_url",
        ),
        (
            "HOTLINE580__DISPATCH__OFFER_TIMEOUT_SECS",
            "0",
            "dispatch.offer_timeout_secs",
        ),
        (
            "HOTLINE580__DISPATCH__OFFER_TIMEOUT_SECS",
            "soon",
            "offer_timeout_secs",
        ),
        ("HOTLINE580__TIMEZONE", "Mars/Olympus", "timezone"),
        (
            "HOTLINE580__LIMITS__WEBHOOK_PER_MINUTE",
            "0",
            "limits.webhook_per_minute",
        ),
        (
            "HOTLINE580__LIMITS__INTAKE_PER_HOUR",
            "many",
            "intake_per_hour",
        ),
        ("HOTLINE580__OPERATORS__PHONE", "call me", "operators.phone"),
        ("HOTLINE580__DATABASE__URL", "mysql://x", "database.url"),
        (
            "HOTLINE580__DISPATCH__QUIET_HOURS",
            "late",
            "dispatch.quiet_hours",
        ),
    ];
    for (k, v, expected) in cases {
        let e = key_of(load(&[(k, v)]).unwrap_err());
        assert!(e.contains(expected), "{k}={v}: {e}");
    }
}

#[test]
fn twilio_needs_its_credentials_and_never_prints_the_token() {
    let e = load(&[("HOTLINE580__TELEPHONY__PROVIDER", "twilio")]).unwrap_err();
    assert_eq!(key_of(e), "twilio.account_sid");
    let e = load(&[
        ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
        ("HOTLINE580__TWILIO__ACCOUNT_SID", "AC1"),
    ])
    .unwrap_err();
    assert_eq!(key_of(e), "twilio.auth_token");
    let c = load(&[
        ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
        ("HOTLINE580__TWILIO__ACCOUNT_SID", "AC1"),
        ("HOTLINE580__TWILIO__AUTH_TOKEN", "supersecrettoken"),
    ])
    .unwrap();
    assert!(!format!("{c:?}").contains("supersecrettoken"));
}

#[test]
fn http_urls_are_accepted() {
    let c = load(&[("HOTLINE580__TWILIO__API_BASE", "http://127.0.0.1:9000")]).unwrap();
    assert_eq!(c.settings.twilio.api_base, "http://127.0.0.1:9000");
}

#[test]
fn map_tiles_default_to_none_and_take_an_xyz_template() {
    let c = load(&[]).unwrap();
    assert_eq!(c.settings.console.map_tiles, "");
    assert_eq!(c.settings.console.map_tiles_origin(), None);
    let c = load(&[(
        "HOTLINE580__CONSOLE__MAP_TILES",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    )])
    .unwrap();
    assert_eq!(
        c.settings.console.map_tiles_origin().as_deref(),
        Some("https://tile.openstreetmap.org")
    );
    let c = load(&[(
        "HOTLINE580__CONSOLE__MAP_TILES",
        "http://10.0.0.5:8080/tiles/{z}/{x}/{y}.png",
    )])
    .unwrap();
    assert_eq!(
        c.settings.console.map_tiles_origin().as_deref(),
        Some("http://10.0.0.5:8080")
    );
}

#[test]
fn a_bad_map_tiles_template_names_the_key() {
    for bad in [
        "tile.openstreetmap.org/{z}/{x}/{y}.png",
        "ftp://tiles.example/{z}/{x}/{y}.png",
        "https://tiles.example/{z}/{x}.png",
        "https://tiles.example/{z}/{y}/{x}/{s}.png",
        "https://tiles.example/{z}/{x}/{y}.png; script-src *",
        "javascript:alert(1)//{z}{x}{y}",
    ] {
        let e = load(&[("HOTLINE580__CONSOLE__MAP_TILES", bad)]).unwrap_err();
        let text = e.to_string();
        assert_eq!(key_of(e), "console.map_tiles", "{bad}");
        assert!(text.contains("{z}/{x}/{y}"), "{text}");
    }
}
