//! Wiring: builds the state, the router and the workers; start and graceful shutdown.

use crate::config::Config;
use crate::store::Db;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// The IVR script that answers calls (validated at start).
    pub script: Arc<crate::ivr::Script>,
    pub provider: Arc<dyn crate::telephony::Provider>,
    /// The job queue's client: handlers insert jobs in their transactions.
    pub jobs: riverqueue::Client,
    /// Per-number limits on inbound calls and SMS (this instance's counters).
    pub limits: Arc<crate::http::limits::CallerLimits>,
    /// Cancelled when the service begins to stop: live streams end with it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The watcher of new events behind `GET /api/events`.
    pub live: crate::http::live::LiveEvents,
    /// Stores new calls together (group commit): the first webhook of each call.
    pub intake: crate::store::call_intake::CallIntake,
}

impl AppState {
    pub fn job_deps(&self) -> crate::jobs::JobDeps {
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(self.jobs.clone());
        crate::jobs::JobDeps {
            db: self.db.clone(),
            config: self.config.clone(),
            provider: self.provider.clone(),
            jobs: Arc::new(cell),
        }
    }
}

/// The process-wide metrics recorder (installed once, shared by every app in a test process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A running service: owns its listener, so tests can bind port 0 and ask `port()`.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects to the database, applies migrations and binds `server.listen`.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let db = Db::connect(&config.settings.database.url).await?;
        db.migrate().await?;
        let listen = config.settings.server.listen.clone();
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (server.listen): {e}"))?;
        let script = crate::ivr::load(&config.settings.ivr.scripts_dir, &config.settings.ivr.entry)
            .map_err(|errors| {
                let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                anyhow::anyhow!("the IVR script is invalid:\n{}", list.join("\n"))
            })?;
        let config = Arc::new(config);
        let provider = crate::telephony::try_build(&config, &db)?;
        let deps = crate::jobs::JobDeps {
            db: db.clone(),
            config: config.clone(),
            provider: provider.clone(),
            jobs: Arc::new(std::sync::OnceLock::new()),
        };
        let jobs = crate::jobs::build_client(deps.clone())?;
        let _ = deps.jobs.set(jobs.clone());
        let limits = Arc::new(crate::http::limits::CallerLimits::new(
            &config.settings.limits,
        ));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let state = AppState {
            intake: crate::store::call_intake::CallIntake::start(db.clone()),
            limits,
            live: crate::http::live::LiveEvents::new(db.clone(), shutdown.clone()),
            shutdown,
            db,
            config,
            metrics: metrics_handle(),
            script: Arc::new(script),
            provider,
            jobs,
        };
        Ok(Application { listener, state })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = crate::http::router(self.state.clone());
        tracing::info!(addr = %self.listener.local_addr()?, "hotline580 listening");
        let mut run = self.state.jobs.start()?;
        // Live streams never end by themselves: end them when stopping begins,
        // or the graceful shutdown would wait for them forever.
        let token = self.state.shutdown.clone();
        axum::serve(self.listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                token.cancel();
            })
            .await?;
        // Let running jobs finish; unfinished ones stay in the database for the next start.
        if let Err(e) = run.stop().await {
            tracing::warn!(error = %e, "stopping the job queue");
        }
        self.state.db.close().await;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
