//! `hotline580 demo`: the whole product on one machine with no Twilio account.
//! A throwaway SQLite database, the simulated provider and a seeded
//! neighbourhood; everything else is the real service.

pub mod neighbourhood;
pub mod seed;

pub use neighbourhood::Neighbourhood;
pub use seed::{SeedSummary, seed};

use crate::config::{Config, ProviderKind};
use secrecy::SecretString;
use std::path::PathBuf;

/// The console login the demo prints.
pub const DEMO_USERNAME: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo580";

/// The demo's size: "a few hundred" people and a month of history.
pub const RESIDENTS: usize = 200;
pub const VOLUNTEERS: usize = 300;
pub const PAST_REQUESTS: usize = 240;

/// A folder of its own under the system's temporary directory, removed when
/// the demo ends.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "hotline580-demo-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Turns the loaded configuration into the demo's: its own database, the
/// simulated provider, and a per-run webhook token so that the simulator's
/// webhooks are signed and checked like Twilio's.
pub fn demo_config(mut config: Config, scratch: &Scratch) -> Config {
    let file = scratch.0.join("demo.db");
    config.settings.database.url = format!("sqlite://{}", file.display());
    config.settings.telephony.provider = ProviderKind::Simulated;
    config.settings.twilio.validate_signatures = true;
    config.settings.twilio.auth_token = Some(SecretString::from(format!(
        "{:032x}",
        rand::random::<u128>()
    )));
    // Whoever tries the demo, at whatever hour it is in Chongqing, should see
    // offers go out: the demo's volunteers keep no quiet hours.
    config.settings.dispatch.quiet_hours = "off".to_string();
    config.quiet_hours = None;
    // Logins end with the demo anyway; a key per run keeps the log quiet about it.
    config.settings.server.session_key = Some(SecretString::from(format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )));
    config
}

/// Runs the demo until Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let scratch = Scratch::new()
        .map_err(|e| anyhow::anyhow!("cannot make a folder for the demo database: {e}"))?;
    let config = demo_config(config, &scratch);
    let app = crate::app::Application::build(config).await?;
    let db = app.state().db.clone();
    let neighbourhood = Neighbourhood::generate(
        580,
        RESIDENTS,
        VOLUNTEERS,
        PAST_REQUESTS,
        crate::store::now_ms(),
    );
    let summary = seed(&db, &neighbourhood).await?;
    crate::auth::create_operator(
        &db,
        DEMO_USERNAME,
        DEMO_PASSWORD,
        crate::domain::Role::Admin,
    )
    .await?;
    let base = app.state().config.settings.server.public_url.clone();
    let base = base.trim_end_matches('/');
    println!(
        "hotline580 demo: {} residents, {} volunteers, {} requests of the past month (simulated phones; nothing is really sent)",
        summary.residents, summary.volunteers, summary.past_requests
    );
    println!("  console    {base}/console");
    println!("  simulator  {base}/console/simulator");
    println!("  login      {DEMO_USERNAME} / {DEMO_PASSWORD}");
    println!("  database   {}", scratch.0.join("demo.db").display());
    println!("Ctrl-C stops it and deletes the demo database.");
    app.run_until_stopped(crate::app::shutdown_signal()).await
}
