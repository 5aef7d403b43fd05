//! Dispatch: matching volunteers to a request, the offer cascade, and the volunteers' SMS
//! grammar. This folder holds the pure parts (values in, values out; no database, no HTTP,
//! no clock reads): the SMS parser, the ranking, the SMS texts, and the keyword classifier
//! for residents' texts.

pub mod commands;
pub mod keywords;
pub mod matching;
pub mod messages;
