//! hotline580: a telephone and SMS hotline dispatcher for neighbourhood help lines.
//!
//! A resident calls or texts; the IVR classifies the request; dispatch offers it
//! by SMS to the nearest suitable volunteer until one accepts; follow-up asks how
//! it went; operators watch and act in a live console. See `DESIGN.md`.

pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod followup;
pub mod http;
pub mod import;
pub mod ivr;
pub mod jobs;
pub mod outbox;
pub mod store;
pub mod telemetry;
pub mod telephony;
