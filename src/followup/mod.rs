//! Follow-up: what happens around and after a request is done. Completion and
//! the points ledger, the residents' rating (SMS or a survey call), SLA clocks
//! and their escalation, and the figures for a period. Pure parts (points,
//! SLA arithmetic, statistics, report formats) take values and return values.

pub mod clocks;
pub mod completion;
pub mod points;
pub mod rating;
pub mod report;
pub mod stats;

pub use clocks::Clock;
pub use completion::{Finished, complete, points_reply, thank_by_sms};
