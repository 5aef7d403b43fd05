//! Helpers shared by the integration tests.

pub mod fake_twilio;
pub mod process;
pub mod webhook;
