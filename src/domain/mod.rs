//! Plain types used everywhere: phone numbers parsed once, the contract's words
//! (categories, grades, statuses, escalation reasons, languages), positions and ids.

mod phone;
mod words;

pub use phone::{PhoneError, PhoneNumber, mask_phone, validate_region};
pub use words::{
    Category, Channel, EscalationReason, Grade, Language, OfferStatus, Role, Status, UnknownWord,
};

use serde::{Deserialize, Serialize};

/// A position on the earth, validated to sane ranges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("latitude {0} is out of range (-90 to 90)")]
    Latitude(f64),
    #[error("longitude {0} is out of range (-180 to 180)")]
    Longitude(f64),
}

impl GeoPoint {
    pub fn new(lat: f64, lon: f64) -> Result<Self, GeoError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::Latitude(lat));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(GeoError::Longitude(lon));
        }
        Ok(Self { lat, lon })
    }

    /// Great-circle distance in metres (haversine, mean earth radius).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        const R: f64 = 6_371_008.8;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * R * a.sqrt().min(1.0).asin()
    }

    /// A latitude/longitude box that contains every point within `radius_m`;
    /// used to let an index narrow candidates before the exact distance.
    pub fn bounding_box(&self, radius_m: f64) -> (f64, f64, f64, f64) {
        let dlat = radius_m / 111_195.0 * 1.001; // degrees of latitude, with a margin
        let coslat = self.lat.to_radians().cos().abs().max(0.01);
        let dlon = dlat / coslat;
        (
            (self.lat - dlat).max(-90.0),
            (self.lat + dlat).min(90.0),
            (self.lon - dlon).max(-180.0),
            (self.lon + dlon).min(180.0),
        )
    }
}

pub type RequestId = i64;
pub type VolunteerId = i64;
pub type ResidentId = i64;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_out_of_range_positions() {
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -181.0).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(GeoPoint::new(29.56, 106.55).is_ok());
    }

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let a = GeoPoint::new(29.0, 106.0).unwrap();
        let b = GeoPoint::new(30.0, 106.0).unwrap();
        let d = a.distance_m(&b);
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
    }

    proptest! {
        #[test]
        fn every_point_within_the_radius_lies_in_the_box(
            lat in -80.0f64..80.0, lon in -170.0f64..170.0,
            dlat in -0.2f64..0.2, dlon in -0.2f64..0.2, radius in 100.0f64..20_000.0,
        ) {
            let c = GeoPoint::new(lat, lon).unwrap();
            let p = GeoPoint::new(lat + dlat, lon + dlon).unwrap();
            if c.distance_m(&p) <= radius {
                let (a, b, x, y) = c.bounding_box(radius);
                prop_assert!(p.lat >= a && p.lat <= b && p.lon >= x && p.lon <= y);
            }
        }
    }
}
