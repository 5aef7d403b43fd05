//! Helpers shared by the integration tests.

pub mod fake_twilio;
pub mod webhook;
