//! Typed settings: loading in layers (defaults, `config/default.toml`, `--config`
//! or `HOTLINE580_CONFIG`, then `HOTLINE580__SECTION__KEY`), and validation that
//! names the key at fault. Secrets are wrapped so they never reach a log.

mod hours;

pub use hours::{ClockRange, StaffedHours};

use crate::domain::{Grade, PhoneNumber};
use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub telephony: TelephonySettings,
    pub twilio: TwilioSettings,
    pub ivr: IvrSettings,
    pub dispatch: DispatchSettings,
    pub operators: OperatorSettings,
    pub timezone: String,
    pub jobs: JobSettings,
    pub emergency: EmergencySettings,
    pub log: LogSettings,
    pub sla: SlaSettings,
    pub followup: FollowupSettings,
    pub limits: LimitSettings,
    pub console: ConsoleSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub public_url: String,
    pub session_key: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Simulated,
    Twilio,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelephonySettings {
    pub provider: ProviderKind,
    pub hotline_number: String,
    pub default_region: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    pub account_sid: Option<String>,
    pub auth_token: Option<SecretString>,
    pub api_base: String,
    pub validate_signatures: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrSettings {
    pub scripts_dir: PathBuf,
    pub entry: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveSizes {
    pub red: Vec<u32>,
    pub yellow: Vec<u32>,
    pub blue: Vec<u32>,
}

impl WaveSizes {
    /// Volunteers offered at once in wave `wave` (1-based); the last entry repeats.
    pub fn size(&self, grade: Grade, wave: u32) -> u32 {
        let sizes = match grade {
            Grade::Red => &self.red,
            Grade::Yellow => &self.yellow,
            Grade::Blue => &self.blue,
        };
        let i = (wave.max(1) - 1) as usize;
        *sizes.get(i).or(sizes.last()).unwrap_or(&1)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchSettings {
    pub offer_timeout_secs: u64,
    pub wave_sizes: WaveSizes,
    pub radius_km: Vec<f64>,
    pub max_waves: u32,
    pub quiet_hours: String,
}

impl DispatchSettings {
    /// Search radius of wave `wave` (1-based) in metres; the last entry repeats.
    pub fn radius_m(&self, wave: u32) -> f64 {
        let i = (wave.max(1) - 1) as usize;
        self.radius_km
            .get(i)
            .or(self.radius_km.last())
            .copied()
            .unwrap_or(10.0)
            * 1000.0
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSettings {
    pub phone: Option<String>,
    pub hours: HoursSetting,
    pub closed_dates: Vec<String>,
}

/// `operators.hours`: the word `always` or a list of rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HoursSetting {
    Word(String),
    Rules(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub lease_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencySettings {
    pub number: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    pub red_accept_secs: u64,
    pub yellow_accept_secs: u64,
    pub blue_accept_secs: u64,
    pub done_secs: u64,
    pub second_level_secs: u64,
    pub second_level_phone: Option<String>,
}

impl SlaSettings {
    pub fn accept_secs(&self, grade: Grade) -> u64 {
        match grade {
            Grade::Red => self.red_accept_secs,
            Grade::Yellow => self.yellow_accept_secs,
            Grade::Blue => self.blue_accept_secs,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupSettings {
    pub rating_wait_secs: u64,
}

/// Per-number rate limits on the webhooks (see `http::limits`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Inbound call starts and SMS from one number per minute.
    pub webhook_per_minute: u32,
    /// Requests one number may open by SMS per hour.
    pub intake_per_hour: u32,
}

/// The console's map (see `console/templates/board.html` and `map.js`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// An XYZ tile URL template (`https://…/{z}/{x}/{y}.png`); empty: no tiles.
    pub map_tiles: String,
    /// Text shown under the map when tiles are drawn (their licence asks for it).
    pub map_attribution: String,
}

impl ConsoleSettings {
    /// The tile server's origin (`https://tiles.example`), for the CSP's `img-src`;
    /// `None` without tiles. The template was checked at load.
    pub fn map_tiles_origin(&self) -> Option<String> {
        if self.map_tiles.is_empty() {
            return None;
        }
        reqwest::Url::parse(&self.map_tiles)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }
}

/// The built-in defaults, the first layer. Kept as TOML so the README can show them.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Values derived from the settings once, at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub hotline_number: PhoneNumber,
    pub operators_phone: Option<PhoneNumber>,
    pub second_level_phone: Option<PhoneNumber>,
    pub staffed: StaffedHours,
    pub quiet_hours: Option<ClockRange>,
    pub tz: jiff::tz::TimeZone,
}

impl Config {
    /// Loads every layer. `explicit` is `--config`; else `HOTLINE580_CONFIG`.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(explicit, &env, Path::new("config/default.toml"))
    }

    /// Loading with the environment passed in, so tests need not touch the process's.
    pub fn load_from(
        explicit: Option<&Path>,
        env: &[(String, String)],
        default_file: &Path,
    ) -> Result<Config, ConfigError> {
        use config::{Config as Layers, File, FileFormat};
        let mut layers =
            Layers::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        if default_file.exists() {
            layers = layers.add_source(File::from(default_file).format(FileFormat::Toml));
        }
        let from_env = env
            .iter()
            .find(|(k, _)| k == "HOTLINE580_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        if let Some(path) = explicit.map(Path::to_path_buf).or(from_env) {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "the file {} does not exist",
                    path.display()
                )));
            }
            layers = layers.add_source(File::from(path).format(FileFormat::Toml));
        }
        // The environment last: it wins. Values stay strings (no try_parsing) so a
        // phone number keeps its `+`; typed fields are converted below by serde.
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("HOTLINE580__") else {
                continue;
            };
            let path = rest.to_ascii_lowercase().replace("__", ".");
            let value = env_value(value);
            layers = layers
                .set_override(path.clone(), value)
                .map_err(|e| invalid(&path, e.to_string()))?;
        }
        let raw = layers
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let settings: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        Self::validate(settings)
    }

    fn validate(settings: Settings) -> Result<Config, ConfigError> {
        let s = &settings;
        url_ok("server.public_url", &s.server.public_url)?;
        url_ok("twilio.api_base", &s.twilio.api_base)?;
        s.server
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                invalid(
                    "server.listen",
                    format!(
                        "`{}` is not an address such as 127.0.0.1:8580",
                        s.server.listen
                    ),
                )
            })?;
        if !(s.database.url.starts_with("sqlite:")
            || s.database.url.starts_with("postgres://")
            || s.database.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "expected sqlite://FILE or postgres://…",
            ));
        }
        crate::domain::validate_region(&s.telephony.default_region)
            .map_err(|e| invalid("telephony.default_region", e.to_string()))?;
        let region = &s.telephony.default_region;
        let hotline_number = PhoneNumber::parse(&s.telephony.hotline_number, region)
            .map_err(|e| invalid("telephony.hotline_number", e.to_string()))?;
        if s.telephony.provider == ProviderKind::Twilio {
            if s.twilio.account_sid.as_deref().unwrap_or("").is_empty() {
                return Err(invalid(
                    "twilio.account_sid",
                    "required when telephony.provider is `twilio`",
                ));
            }
            use secrecy::ExposeSecret;
            if s.twilio
                .auth_token
                .as_ref()
                .map(|t| t.expose_secret().is_empty())
                .unwrap_or(true)
            {
                return Err(invalid(
                    "twilio.auth_token",
                    "required when telephony.provider is `twilio` (set HOTLINE580__TWILIO__AUTH_TOKEN)",
                ));
            }
        }
        let operators_phone = match s.operators.phone.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(
                PhoneNumber::parse(p, region)
                    .map_err(|e| invalid("operators.phone", e.to_string()))?,
            ),
            None => None,
        };
        let second_level_phone = match s
            .sla
            .second_level_phone
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            Some(p) => Some(
                PhoneNumber::parse(p, region)
                    .map_err(|e| invalid("sla.second_level_phone", e.to_string()))?,
            ),
            None => None,
        };
        if s.emergency.number.trim().is_empty()
            || !s
                .emergency
                .number
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit() || c == '+')
        {
            return Err(invalid("emergency.number", "expected digits such as 120"));
        }
        for (key, v) in [
            ("dispatch.offer_timeout_secs", s.dispatch.offer_timeout_secs),
            ("jobs.lease_secs", s.jobs.lease_secs),
            ("sla.red_accept_secs", s.sla.red_accept_secs),
            ("sla.yellow_accept_secs", s.sla.yellow_accept_secs),
            ("sla.blue_accept_secs", s.sla.blue_accept_secs),
            ("sla.done_secs", s.sla.done_secs),
            ("sla.second_level_secs", s.sla.second_level_secs),
            ("followup.rating_wait_secs", s.followup.rating_wait_secs),
        ] {
            if v < 1 {
                return Err(invalid(key, "expected an integer of at least 1"));
            }
        }
        for (key, v) in [
            ("limits.webhook_per_minute", s.limits.webhook_per_minute),
            ("limits.intake_per_hour", s.limits.intake_per_hour),
        ] {
            if v < 1 {
                return Err(invalid(key, "expected an integer of at least 1"));
            }
        }
        for (key, sizes) in [
            ("dispatch.wave_sizes.red", &s.dispatch.wave_sizes.red),
            ("dispatch.wave_sizes.yellow", &s.dispatch.wave_sizes.yellow),
            ("dispatch.wave_sizes.blue", &s.dispatch.wave_sizes.blue),
        ] {
            if sizes.is_empty() || sizes.contains(&0) {
                return Err(invalid(
                    key,
                    "expected a list of sizes of at least 1, such as [1, 1, 3]",
                ));
            }
        }
        if s.dispatch.radius_km.is_empty()
            || s.dispatch
                .radius_km
                .iter()
                .any(|r| !r.is_finite() || *r <= 0.0)
        {
            return Err(invalid(
                "dispatch.radius_km",
                "expected a list of positive distances, such as [2, 5, 10]",
            ));
        }
        if s.dispatch.max_waves < 1 {
            return Err(invalid(
                "dispatch.max_waves",
                "expected an integer of at least 1",
            ));
        }
        let quiet_hours = match s.dispatch.quiet_hours.trim() {
            "off" => None,
            other => {
                Some(ClockRange::parse(other).map_err(|e| invalid("dispatch.quiet_hours", e))?)
            }
        };
        let staffed = StaffedHours::parse(&s.operators.hours, &s.operators.closed_dates)
            .map_err(|(key, e)| invalid(key, e))?;
        let tz = jiff::tz::TimeZone::get(&s.timezone).map_err(|_| {
            invalid(
                "timezone",
                format!(
                    "unknown time zone `{}` (expected a name such as Asia/Shanghai)",
                    s.timezone
                ),
            )
        })?;
        tracing_level_ok(&s.log.level)?;
        tile_template_ok("console.map_tiles", &s.console.map_tiles)?;
        Ok(Config {
            hotline_number,
            operators_phone,
            second_level_phone,
            staffed,
            quiet_hours,
            tz,
            settings,
        })
    }

    /// The settings used by tests and the demo when nothing else is given.
    pub fn defaults() -> Config {
        Self::load_from(None, &[], Path::new("/nonexistent")).expect("built-in defaults are valid")
    }
}

/// Environment values are strings; lists such as `[2, 5, 10]` are read as TOML
/// so `HOTLINE580__DISPATCH__RADIUS_KM="[1, 2]"` works. Phone numbers stay text.
fn env_value(value: &str) -> config::Value {
    let t = value.trim();
    if t.starts_with('[')
        && let Ok(parsed) = toml::from_str::<toml::Table>(&format!("v = {t}"))
        && let Some(v) = parsed.get("v")
    {
        return toml_to_config(v);
    }
    config::Value::from(value.to_string())
}

fn toml_to_config(v: &toml::Value) -> config::Value {
    match v {
        toml::Value::String(s) => config::Value::from(s.clone()),
        toml::Value::Integer(i) => config::Value::from(*i),
        toml::Value::Float(f) => config::Value::from(*f),
        toml::Value::Boolean(b) => config::Value::from(*b),
        toml::Value::Array(a) => {
            config::Value::from(a.iter().map(toml_to_config).collect::<Vec<_>>())
        }
        other => config::Value::from(other.to_string()),
    }
}

fn url_ok(key: &str, url: &str) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| invalid(key, format!("`{url}` is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(
            key,
            format!("`{url}` must be an http:// or https:// URL"),
        ));
    }
    Ok(())
}

/// Empty, or an http(s) URL with `{z}`, `{x}` and `{y}` (and no other braces:
/// the map fills in only those three).
fn tile_template_ok(key: &str, template: &str) -> Result<(), ConfigError> {
    if template.is_empty() {
        return Ok(());
    }
    let expected =
        "expected empty (no tiles) or a URL such as https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    let parsed = reqwest::Url::parse(template)
        .map_err(|e| invalid(key, format!("`{template}` is not a URL ({e}); {expected}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(
            key,
            format!("`{template}` must be an http:// or https:// URL; {expected}"),
        ));
    }
    for part in ["{z}", "{x}", "{y}"] {
        if !template.contains(part) {
            return Err(invalid(
                key,
                format!("`{template}` lacks `{part}`; {expected}"),
            ));
        }
    }
    let rest = template
        .replace("{z}", "")
        .replace("{x}", "")
        .replace("{y}", "");
    if rest.contains('{') || rest.contains('}') || template.chars().any(char::is_whitespace) {
        return Err(invalid(
            key,
            format!(
                "`{template}` has a placeholder other than {{z}}, {{x}}, {{y}} or a space; {expected}"
            ),
        ));
    }
    Ok(())
}

fn tracing_level_ok(level: &str) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| {
            invalid(
                "log.level",
                format!("`{level}`: {e} (expected error, warn, info, debug or trace)"),
            )
        })
}

#[cfg(test)]
mod tests;
