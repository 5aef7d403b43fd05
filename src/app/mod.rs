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
        let state = AppState {
            db,
            config: Arc::new(config),
            metrics: metrics_handle(),
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
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
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
