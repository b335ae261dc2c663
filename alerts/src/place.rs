//! Where a unit or camera is, and whom to call (the duty officer needs both to dispatch).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A map datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datum {
    /// GCJ-02, the datum of Chinese web maps (高德, 腾讯): what addresses looked up by offices
    /// are usually in. The default.
    Gcj02,
    /// WGS-84, the datum of GPS receivers.
    Wgs84,
}

impl std::str::FromStr for Datum {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gcj02" => Ok(Datum::Gcj02),
            "wgs84" => Ok(Datum::Wgs84),
            _ => Err(format!("`{s}` is not `gcj02` or `wgs84`")),
        }
    }
}

/// Coordinates with their datum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// The datum the coordinates are in.
    pub datum: Datum,
}

/// A place: the address and the coordinates, either or both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// Postal address (地址).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub location: Option<Location>,
}

impl Place {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.address.is_none() && self.location.is_none()
    }

    /// `Some` unless empty (for an event's `location` block).
    pub fn block(&self) -> Option<Place> {
        (!self.is_empty()).then(|| self.clone())
    }
}

/// Whom to call at a unit. Personal data: shown to the unit's township and the departments its
/// events are assigned to, never logged (`Debug` prints no number), never in metrics.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contacts {
    /// The fire control room's duty phone (消防控制室值班电话).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty_phone: Option<String>,
    /// The person responsible for fire safety (消防安全责任人).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// Their phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_phone: Option<String>,
}

impl Contacts {
    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.duty_phone.is_none() && self.manager.is_none() && self.manager_phone.is_none()
    }

    /// `Some` unless empty.
    pub fn block(&self) -> Option<Contacts> {
        (!self.is_empty()).then(|| self.clone())
    }
}

impl fmt::Debug for Contacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() {
            "Contacts(none)"
        } else {
            "Contacts(..)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_one_flat_block_and_contacts_never_print() {
        let p = Place {
            address: Some("兰溪市兰江街道XX路1号".into()),
            location: Some(Location {
                lat: 29.21,
                lon: 119.46,
                datum: Datum::Gcj02,
            }),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"address": "兰溪市兰江街道XX路1号", "lat": 29.21, "lon": 119.46, "datum": "gcj02"})
        );
        assert_eq!(serde_json::from_value::<Place>(v).unwrap(), p);
        let c = Contacts {
            duty_phone: Some("0579-88888888".into()),
            ..Contacts::default()
        };
        assert!(!format!("{c:?}").contains("8888"));
    }
}
