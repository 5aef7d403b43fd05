//! The provider boundary: sending SMS and placing calls through Twilio's REST
//! API or the simulated provider, and checking Twilio's webhook signatures.

pub mod signature;
