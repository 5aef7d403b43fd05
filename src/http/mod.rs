//! HTTP: the axum routers (health and metrics here; Twilio webhooks, the API,
//! the console and Open311 in their own files) and the one error type.

pub mod actions;
pub mod api;
pub mod console;
mod error;
pub mod followup;
mod health;
pub mod limits;
pub mod live;
pub mod open311;
pub mod openapi;
pub mod session;
pub mod simulator;
pub mod twilio;

pub use error::{AppError, AppResult};

use crate::app::AppState;
use axum::Router;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(webhook_routes())
        .merge(open311::routes())
        .merge(
            api::routes()
                .merge(actions::routes())
                .merge(live::routes())
                .merge(openapi::routes())
                .merge(console::routes(&state.config))
                .merge(simulator::routes())
                .layer(axum::Extension(std::sync::Arc::new(
                    api::LoginThrottle::default(),
                )))
                .layer(session::layer(&state)),
        )
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(15),
        ))
        .with_state(state)
}

/// Every `/twilio/*` webhook: the IVR and SMS ones and the follow-up survey's.
/// The simulator plays its phones through this same router.
pub fn webhook_routes() -> Router<AppState> {
    twilio::routes().merge(followup::twilio_routes())
}
