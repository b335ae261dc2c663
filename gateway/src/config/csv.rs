//! Registries of thousands of units and cameras, from CSV files named in the config.
//!
//! `units.csv`: `id,name,township[,heartbeat_timeout_s][,gb26875_address][,cameras][,utc_offset][,gb26875_peers]`
//! `[,address][,lat][,lon][,datum][,duty_phone][,manager][,manager_phone]` (cameras separated by `;`).
//! `cameras.csv`: `id,name,township,url[,username][,password_env][,password_file][,address][,lat][,lon][,datum]`
//! (no inline passwords in CSV files: registries get copied around).
//!
//! Errors name the file, the line and the column. Files saved by Excel or WPS in a Chinese
//! locale (GBK/GB18030) are read too, with a warning; a BOM is skipped; columns this gateway
//! does not know (a vendor export's extras) are ignored with one warning naming them.

use super::error::{At, ConfigError};
use super::place::PlaceDraft;
use super::{CameraDraft, SecretDraft, UnitDraft, Valued};
use alerts::place::Contacts;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

struct Table {
    file: Arc<std::path::PathBuf>,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, csv::StringRecord)>,
}

/// A registry file's text: UTF-8 (after a BOM, if any), else GB18030 — the superset of GBK that
/// Excel and WPS write in a Chinese locale — with a warning; neither is one clear error.
fn decode(path: &Path, bytes: &[u8]) -> Result<(String, Option<String>), String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_string(), None));
    }
    match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok((
            text.into_owned(),
            Some(format!(
                "{}: not UTF-8, read as GBK/GB18030 (save it as \"CSV UTF-8\" to make that certain)",
                path.display()
            )),
        )),
        None => Err(
            "neither UTF-8 nor GBK/GB18030 text: save it from Excel or WPS as \"CSV UTF-8 (逗号分隔)\""
                .to_string(),
        ),
    }
}

impl Table {
    fn read(
        path: &Path,
        required: &[&str],
        optional: &[&str],
    ) -> Result<(Table, Vec<String>), Vec<ConfigError>> {
        let file = Arc::new(path.to_path_buf());
        let at = |line| At {
            file: file.clone(),
            line,
            column: 0,
        };
        let one = |line, message: String| {
            vec![ConfigError {
                at: at(line),
                message,
            }]
        };
        let bytes =
            std::fs::read(path).map_err(|e| one(0, format!("cannot read registry: {e}")))?;
        let (text, decoded) = decode(path, &bytes).map_err(|e| one(0, e))?;
        let mut warnings: Vec<String> = decoded.into_iter().collect();
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| one(1, format!("bad header: {e}")))?
            .clone();
        // the header's own line: comment and blank lines may come first
        let header_line = 1 + text
            .lines()
            .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            .count();
        let mut errors = Vec::new();
        let mut columns = HashMap::new();
        let mut ignored = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            if !required.contains(&h) && !optional.contains(&h) {
                ignored.push(format!("`{h}`"));
            }
            if columns.insert(h.to_string(), i).is_some() {
                errors.push(ConfigError {
                    at: At {
                        file: file.clone(),
                        line: header_line,
                        column: i + 1,
                    },
                    message: format!("column `{h}` appears twice"),
                });
            }
        }
        if !ignored.is_empty() {
            warnings.push(format!(
                "{}:{header_line}: columns ignored (not known to the gateway): {}",
                path.display(),
                ignored.join(", ")
            ));
        }
        for r in required {
            if !columns.contains_key(*r) {
                errors.push(ConfigError {
                    at: at(header_line),
                    message: format!(
                        "missing column `{r}` (the header needs {})",
                        required.join(", ")
                    ),
                });
            }
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            match record {
                Ok(r) => {
                    let line = r.position().map(|p| p.line() as usize).unwrap_or(0);
                    rows.push((line, r));
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                    errors.push(ConfigError {
                        at: at(line),
                        message: format!("bad row: {e}"),
                    });
                }
            }
        }
        if errors.is_empty() {
            let table = Table {
                file,
                columns,
                rows,
            };
            Ok((table, warnings))
        } else {
            Err(errors)
        }
    }

    fn cell<'r>(&self, row: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.columns
            .get(column)
            .and_then(|&i| row.get(i))
            .filter(|v| !v.is_empty())
    }

    fn at(&self, line: usize, column: &str) -> At {
        At {
            file: self.file.clone(),
            line,
            column: self.columns.get(column).map(|i| i + 1).unwrap_or(0),
        }
    }

    /// A `;`-separated list in a cell (empty when the cell is).
    fn list(&self, line: usize, row: &csv::StringRecord, column: &str) -> Vec<Valued<String>> {
        self.cell(row, column)
            .map(|c| {
                c.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Valued {
                        value: s.to_string(),
                        at: self.at(line, column),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn valued(&self, line: usize, row: &csv::StringRecord, column: &str) -> Option<Valued<String>> {
        self.cell(row, column).map(|v| Valued {
            value: v.to_string(),
            at: self.at(line, column),
        })
    }

    /// The optional `address`, `lat`, `lon`, `datum` columns.
    fn place(&self, line: usize, row: &csv::StringRecord) -> PlaceDraft {
        PlaceDraft {
            address: self.cell(row, "address").map(String::from),
            lat: self.valued(line, row, "lat"),
            lon: self.valued(line, row, "lon"),
            datum: self.valued(line, row, "datum"),
        }
    }

    fn number(
        &self,
        line: usize,
        row: &csv::StringRecord,
        column: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<u64> {
        let v = self.cell(row, column)?;
        match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(ConfigError {
                    at: self.at(line, column),
                    message: format!("`{column}`: `{v}` is not a non-negative integer"),
                });
                None
            }
        }
    }

    fn required(
        &self,
        line: usize,
        row: &csv::StringRecord,
        column: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Valued<String> {
        self.valued(line, row, column).unwrap_or_else(|| {
            errors.push(ConfigError {
                at: self.at(line, column),
                message: format!("`{column}` is empty"),
            });
            Valued {
                value: String::new(),
                at: self.at(line, column),
            }
        })
    }
}

/// The units of a CSV registry, and warnings (encoding, ignored columns).
pub fn units(path: &Path) -> Result<(Vec<UnitDraft>, Vec<String>), Vec<ConfigError>> {
    let (t, warnings) = Table::read(
        path,
        &["id", "name", "township"],
        &[
            "heartbeat_timeout_s",
            "gb26875_address",
            "cameras",
            "utc_offset",
            "gb26875_peers",
            "address",
            "lat",
            "lon",
            "datum",
            "duty_phone",
            "manager",
            "manager_phone",
        ],
    )?;
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(t.rows.len());
    for (line, row) in &t.rows {
        let line = *line;
        let unit = UnitDraft {
            id: t.required(line, row, "id", &mut errors),
            name: t.required(line, row, "name", &mut errors).value,
            township: t.required(line, row, "township", &mut errors),
            heartbeat_timeout_s: t.number(line, row, "heartbeat_timeout_s", &mut errors),
            gb26875_address: t
                .number(line, row, "gb26875_address", &mut errors)
                .map(|v| Valued {
                    value: v,
                    at: t.at(line, "gb26875_address"),
                }),
            cameras: t.list(line, row, "cameras"),
            camera_links: Vec::new(),
            utc_offset: t.valued(line, row, "utc_offset"),
            gb26875_peers: t.list(line, row, "gb26875_peers"),
            place: t.place(line, row),
            contacts: Contacts {
                duty_phone: t.cell(row, "duty_phone").map(String::from),
                manager: t.cell(row, "manager").map(String::from),
                manager_phone: t.cell(row, "manager_phone").map(String::from),
            },
        };
        out.push(unit);
    }
    if errors.is_empty() {
        Ok((out, warnings))
    } else {
        Err(errors)
    }
}

/// The cameras of a CSV registry, and warnings (encoding, ignored columns).
pub fn cameras(path: &Path) -> Result<(Vec<CameraDraft>, Vec<String>), Vec<ConfigError>> {
    let (t, warnings) = Table::read(
        path,
        &["id", "name", "township", "url"],
        &[
            "username",
            "password_env",
            "password_file",
            "vqd_interval_s",
            "vqd_profile",
            "address",
            "lat",
            "lon",
            "datum",
        ],
    )?;
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(t.rows.len());
    for (line, row) in &t.rows {
        let line = *line;
        out.push(CameraDraft {
            id: t.required(line, row, "id", &mut errors),
            name: t.required(line, row, "name", &mut errors).value,
            township: t.required(line, row, "township", &mut errors),
            url: t.required(line, row, "url", &mut errors),
            username: t.cell(row, "username").map(str::to_string),
            password: SecretDraft {
                inline: None,
                env: t.valued(line, row, "password_env"),
                file: t.valued(line, row, "password_file"),
                at: t.at(line, "password_env"),
            },
            onvif_events: None,
            vqd_interval_s: t.number(line, row, "vqd_interval_s", &mut errors),
            vqd_profile: t.valued(line, row, "vqd_profile"),
            place: t.place(line, row),
        });
    }
    if errors.is_empty() {
        Ok((out, warnings))
    } else {
        Err(errors)
    }
}
