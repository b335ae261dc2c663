//! Addresses, coordinates and contacts of units and cameras, in TOML and in the CSV registries.

use super::error::At;
use super::Validator;
use super::Valued;
use alerts::place::{Contacts, Datum, Location, Place};
use serde::Deserialize;
use toml::Spanned;

/// `location = { lat, lon, datum }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationEntry {
    pub lat: f64,
    pub lon: f64,
    pub datum: Option<Spanned<String>>,
}

/// `contacts = { duty_phone, manager, manager_phone }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsEntry {
    pub duty_phone: Option<String>,
    pub manager: Option<String>,
    pub manager_phone: Option<String>,
}

impl From<&ContactsEntry> for Contacts {
    fn from(c: &ContactsEntry) -> Self {
        let clean = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        Contacts {
            duty_phone: clean(&c.duty_phone),
            manager: clean(&c.manager),
            manager_phone: clean(&c.manager_phone),
        }
    }
}

/// A place as written (TOML or CSV), checked by [`Validator::place`].
#[derive(Debug, Clone, Default)]
pub(crate) struct PlaceDraft {
    pub address: Option<String>,
    pub lat: Option<Valued<String>>,
    pub lon: Option<Valued<String>>,
    pub datum: Option<Valued<String>>,
}

impl PlaceDraft {
    /// From TOML: the coordinates' errors point at the entry's id.
    pub(super) fn toml(
        address: &Option<String>,
        location: &Option<LocationEntry>,
        at: &At,
        v: &Validator,
    ) -> Self {
        let value = |x: f64| Valued {
            value: x.to_string(),
            at: at.clone(),
        };
        PlaceDraft {
            address: address.clone(),
            lat: location.as_ref().map(|l| value(l.lat)),
            lon: location.as_ref().map(|l| value(l.lon)),
            datum: location
                .as_ref()
                .and_then(|l| l.datum.as_ref())
                .map(|d| v.valued(d)),
        }
    }
}

impl Validator {
    /// A place: both coordinates or neither, in range, a known datum (default GCJ-02).
    pub(crate) fn place(&mut self, what: &str, d: &PlaceDraft) -> Place {
        let address = d
            .address
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from);
        let coord =
            |v: &Option<Valued<String>>, name: &str, max: f64, errs: &mut Vec<(At, String)>| {
                let v = v.as_ref()?;
                match v.value.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() && x.abs() <= max => Some(x),
                    _ => {
                        errs.push((
                            v.at.clone(),
                            format!(
                                "{what} `{name}`: `{}` is not a {name} (−{max} to {max})",
                                v.value
                            ),
                        ));
                        None
                    }
                }
            };
        let mut errs = Vec::new();
        let lat = coord(&d.lat, "lat", 90.0, &mut errs);
        let lon = coord(&d.lon, "lon", 180.0, &mut errs);
        let datum = match &d.datum {
            None => Some(Datum::Gcj02),
            Some(v) => v
                .value
                .parse::<Datum>()
                .map_err(|e| errs.push((v.at.clone(), format!("{what} `datum`: {e}"))))
                .ok(),
        };
        if d.lat.is_some() != d.lon.is_some() {
            let at = d
                .lat
                .as_ref()
                .or(d.lon.as_ref())
                .map(|v| v.at.clone())
                .expect("one is set");
            errs.push((at, format!("{what}: give both `lat` and `lon`, or neither")));
        }
        for (at, m) in errs {
            self.err(at, m);
        }
        let location = match (lat, lon, datum) {
            (Some(lat), Some(lon), Some(datum)) => Some(Location { lat, lon, datum }),
            _ => None,
        };
        Place { address, location }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use alerts::place::Datum;
    use std::path::Path;

    const BASE: &str = "[[townships]]\ncode = \"lanjiang\"\nname = \"兰江街道\"\n\n[registry]\nunits_csv = \"units.csv\"\ncameras_csv = \"cameras.csv\"\n";

    fn load(dir: &Path, units_csv: &str, extra: &str) -> Result<super::super::Config, String> {
        std::fs::write(dir.join("units.csv"), units_csv).unwrap();
        std::fs::write(dir.join("cameras.csv"), "id,name,township,url,address,lat,lon,datum\ncam-1,路口,lanjiang,rtsp://127.0.0.1/x,兰江路口,29.1,119.4,wgs84\n").unwrap();
        parse(&dir.join("gateway.toml"), &format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn places_and_contacts_load_from_toml_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "id,name,township,address,lat,lon,duty_phone,manager,manager_phone\nu-1,甲,lanjiang,振兴路1号,29.21,119.46,0579-1,陈,138\n";
        let toml = "\n[[units]]\nid = \"u-2\"\nname = \"乙\"\ntownship = \"lanjiang\"\naddress = \"振兴路2号\"\n";
        let c = load(dir.path(), csv, toml).unwrap();
        let u = c.registry.unit("u-1").unwrap();
        assert_eq!(u.place.address.as_deref(), Some("振兴路1号"));
        assert_eq!(
            u.place.location.unwrap().datum,
            Datum::Gcj02,
            "GCJ-02 unless said"
        );
        assert_eq!(u.contacts.duty_phone.as_deref(), Some("0579-1"));
        let cam = c.registry.camera("cam-1").unwrap();
        assert_eq!(cam.place.location.unwrap().datum, Datum::Wgs84);
        let u2 = c.registry.unit("u-2").unwrap();
        assert!(u2.place.location.is_none() && u2.contacts.is_empty());
    }

    #[test]
    fn bad_coordinates_are_named_with_their_cell() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "id,name,township,lat,lon,datum\nu-1,甲,lanjiang,91,119.46,\nu-2,乙,lanjiang,29.2,,\nu-3,丙,lanjiang,29.2,119.4,bd09\n";
        let e = load(dir.path(), csv, "").unwrap_err();
        assert!(
            e.contains("units.csv:2:4: unit `u-1` `lat`: `91` is not a lat"),
            "{e}"
        );
        assert!(
            e.contains("units.csv:3:4: unit `u-2`: give both `lat` and `lon`"),
            "{e}"
        );
        assert!(
            e.contains("units.csv:4:6: unit `u-3` `datum`: `bd09` is not `gcj02` or `wgs84`"),
            "{e}"
        );
    }
}
