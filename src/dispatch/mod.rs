//! Dispatch: matching volunteers to a request, the offer cascade, and the volunteers' SMS
//! grammar. This folder holds the pure parts (values in, values out; no database, no HTTP,
//! no clock reads): the SMS parser, the ranking, the SMS texts, and the keyword classifier
//! for residents' texts.

pub mod assignment;
pub mod cascade;
pub mod commands;
pub mod keywords;
pub mod matching;
pub mod messages;
pub mod operator;
pub mod sms;

pub use cascade::{expire_offer, offer_undeliverable, run_wave};
