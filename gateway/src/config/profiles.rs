//! Vendor profiles: `[[profiles]]` in the configuration and in the files named by
//! `[registry] profile_files`, checked completely (every error names its file, line and key).

use super::error::Source;
use super::raw::{FieldEntry, FlagNames, ProfileEntry, ProfileFile};
use super::{At, ConfigError, Validator};
use alerts::signal::{Component, Location, StatusFlag, StatusFlags};
use alerts::threshold::Limits;
use ingest::mqtt::topic::TopicPattern;
use ingest::profile::{Field, JsonPath, Profiles, Reading, TimeFormat, VendorProfile};
use ingest::standard::Channel;
use std::collections::HashMap;
use toml::Spanned;

impl Validator {
    /// Every profile, inline ones first, then those of each file in order.
    pub(super) fn profiles(
        &mut self,
        inline: &[ProfileEntry],
        files: &[Spanned<String>],
    ) -> Profiles {
        let mut names: HashMap<String, At> = HashMap::new();
        let mut out = Vec::new();
        for p in inline {
            out.extend(self.profile(p, &mut names));
        }
        for f in files {
            let path = self.path(f.get_ref());
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    self.err(
                        self.at(f),
                        format!(
                            "[registry] `profile_files`: cannot read `{}`: {e}",
                            f.get_ref()
                        ),
                    );
                    continue;
                }
            };
            // errors in the file name the file: validate with it as the source
            let src = Source::new(&path, &text);
            let file: ProfileFile = match toml::from_str(&text) {
                Ok(file) => file,
                Err(e) => {
                    let at = e.span().map(|s| src.at(&s)).unwrap_or(At {
                        file: src.file.clone(),
                        line: 0,
                        column: 0,
                    });
                    self.errors.push(ConfigError {
                        at,
                        message: e.message().trim().to_string(),
                    });
                    continue;
                }
            };
            let outer = std::mem::replace(&mut self.src, src);
            for p in &file.profiles {
                out.extend(self.profile(p, &mut names));
            }
            self.src = outer;
        }
        Profiles(out)
    }

    fn profile(
        &mut self,
        p: &ProfileEntry,
        names: &mut HashMap<String, At>,
    ) -> Option<VendorProfile> {
        let errors_before = self.errors.len();
        let name = p.name.get_ref();
        let name_at = self.at(&p.name);
        let what = format!("profile `{name}`");
        if !super::is_code(name) {
            self.err(
                name_at.clone(),
                format!("{what}: a name is 1-64 lowercase letters, digits, `-` or `_`"),
            );
        } else if name.parse::<Channel>().is_ok() {
            self.err(
                name_at.clone(),
                format!("{what}: the name is a standard channel's; pick another"),
            );
        } else if let Some(first) = names.get(name) {
            let first = format!("{}:{}", first.file.display(), first.line);
            self.err(
                name_at.clone(),
                format!("{what} is defined twice (first at {first})"),
            );
        } else {
            names.insert(name.clone(), name_at.clone());
        }
        let topic = p
            .topic
            .as_ref()
            .and_then(|t| match TopicPattern::parse_vendor(t.get_ref()) {
                Ok(pattern) => Some(pattern),
                Err(e) => {
                    self.err(self.at(t), format!("{what} `topic`: {e}"));
                    None
                }
            });
        let unit_path = p.unit_path.as_ref().and_then(|u| self.json_path(u, &what));
        if let (Some(t), None) = (&topic, &p.unit_path) {
            if !t.names_unit() {
                self.err(
                    name_at.clone(),
                    format!("{what}: `topic` has no `{{unit_id}}` level, so `unit_path` must say where the unit id is"),
                );
            }
        }
        let format = match &p.time_format {
            None => TimeFormat::Rfc3339,
            Some(f) => match TimeFormat::from_name(f.get_ref()) {
                Some(f) => f,
                None => {
                    self.err(
                        self.at(f),
                        format!(
                            "{what} `time_format`: `{}` is not one of {}",
                            f.get_ref(),
                            TimeFormat::NAMES.join(", ")
                        ),
                    );
                    TimeFormat::Rfc3339
                }
            },
        };
        if p.time_format.is_some() && p.time_path.is_none() {
            self.err(
                name_at.clone(),
                format!("{what}: `time_format` needs `time_path`"),
            );
        }
        let time = p
            .time_path
            .as_ref()
            .and_then(|t| self.json_path(t, &what))
            .map(|path| (path, format));
        if p.fields.is_empty() {
            self.err(
                name_at,
                format!("{what}: needs at least one [[profiles.fields]]"),
            );
        }
        let fields: Vec<Field> = p
            .fields
            .iter()
            .filter_map(|f| self.field(f, p, &what))
            .collect();
        if self.errors.len() > errors_before {
            return None;
        }
        Some(VendorProfile {
            name: name.clone(),
            topic,
            unit_path,
            time,
            fields,
        })
    }

    fn json_path(&mut self, s: &Spanned<String>, what: &str) -> Option<JsonPath> {
        match JsonPath::parse(s.get_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(self.at(s), format!("{what}: {e}"));
                None
            }
        }
    }

    fn field(&mut self, f: &FieldEntry, p: &ProfileEntry, what: &str) -> Option<Field> {
        let errors_before = self.errors.len();
        let at = self.at(&f.path);
        let what = format!("{what} field `{}`", f.path.get_ref());
        let path = self.json_path(&f.path, what.as_str());
        let component = match (f.component_type, f.component_addr) {
            (Some(kind), Some(addr)) => Some(Component { kind, addr }),
            (None, None) => None,
            _ => {
                self.err(
                    at.clone(),
                    format!("{what}: `component_type` and `component_addr` go together"),
                );
                None
            }
        };
        let location = Location {
            system_type: f.system_type.unwrap_or(p.system_type),
            system_addr: f.system_addr.unwrap_or(p.system_addr),
            component,
        };
        let analog_keys = f.scale.is_some()
            || f.offset.is_some()
            || f.above.is_some()
            || f.clear_below.is_some()
            || f.below.is_some()
            || f.clear_above.is_some();
        let reading = match (&f.analog_type, &f.status) {
            (Some(t), None) => {
                let analog_type = *t.get_ref();
                if alerts::codes::analog_type(analog_type).is_none() {
                    self.err(
                        self.at(t),
                        format!("{what} `analog_type`: {analog_type} is not a GB/T 26875.3 analog type (1-12)"),
                    );
                }
                let scale = f.scale.unwrap_or(1.0);
                let offset = f.offset.unwrap_or(0.0);
                if !scale.is_finite() || scale == 0.0 || !offset.is_finite() {
                    self.err(
                        at.clone(),
                        format!("{what}: `scale` must be a non-zero number and `offset` a number"),
                    );
                }
                let any_limit = f.above.is_some()
                    || f.clear_below.is_some()
                    || f.below.is_some()
                    || f.clear_above.is_some();
                let limits = if any_limit {
                    match Limits::from_values(f.above, f.clear_below, f.below, f.clear_above) {
                        Ok(l) => Some(l),
                        Err(e) => {
                            self.err(at.clone(), format!("{what}: {e}"));
                            None
                        }
                    }
                } else {
                    None
                };
                if f.description.is_some() {
                    self.err(
                        at.clone(),
                        format!("{what}: `description` is for status fields"),
                    );
                }
                Reading::Analog {
                    analog_type,
                    scale,
                    offset,
                    limits,
                }
            }
            (None, Some(map)) => {
                if analog_keys {
                    self.err(
                        at.clone(),
                        format!("{what}: `scale`, `offset` and limits are for analog fields"),
                    );
                }
                if map.get_ref().is_empty() {
                    self.err(self.at(map), format!("{what} `status`: the map is empty"));
                }
                let mut entries = Vec::new();
                for (value, names) in map.get_ref() {
                    let names: Vec<&String> = match names {
                        FlagNames::One(n) => vec![n],
                        FlagNames::Many(ns) => ns.iter().collect(),
                    };
                    let mut flags = StatusFlags::EMPTY;
                    for n in &names {
                        match n.parse::<StatusFlag>() {
                            Ok(flag) => flags.insert(flag),
                            Err(e) => self.err(
                                self.at(map),
                                format!("{what} `status` value `{value}`: {e}"),
                            ),
                        }
                    }
                    if names.is_empty() {
                        self.err(
                            self.at(map),
                            format!(
                                "{what} `status` value `{value}`: names no flag (use \"normal\")"
                            ),
                        );
                    }
                    entries.push((value.clone(), flags));
                }
                Reading::Status {
                    map: entries,
                    description: f.description.clone(),
                }
            }
            (Some(_), Some(_)) => {
                self.err(
                    at,
                    format!("{what}: give `analog_type` (a reading) or `status` (a map), not both"),
                );
                return None;
            }
            (None, None) => {
                self.err(
                    at,
                    format!("{what}: needs `analog_type` (a reading) or `status` (a map of values to flags)"),
                );
                return None;
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Field {
            path: path?,
            optional: f.optional,
            location,
            reading,
        })
    }
}
