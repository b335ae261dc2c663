//! Registries of thousands of units and cameras, from CSV files named in the config.
//!
//! `units.csv`: `id,name,township[,heartbeat_timeout_s][,gb26875_address][,cameras][,utc_offset][,gb26875_peers]`
//! `[,address][,lat][,lon][,datum][,duty_phone][,manager][,manager_phone]` (cameras separated by `;`).
//! `cameras.csv`: `id,name,township,url[,username][,password_env][,password_file][,address][,lat][,lon][,datum]`
//! (no inline passwords in CSV files: registries get copied around).
//!
//! Errors name the file, the line and the column.

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

impl Table {
    fn read(path: &Path, required: &[&str], optional: &[&str]) -> Result<Table, Vec<ConfigError>> {
        let file = Arc::new(path.to_path_buf());
        let at = |line| At {
            file: file.clone(),
            line,
            column: 0,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_path(path)
            .map_err(|e| {
                vec![ConfigError {
                    at: at(0),
                    message: format!("cannot read registry: {e}"),
                }]
            })?;
        let headers = reader
            .headers()
            .map_err(|e| {
                vec![ConfigError {
                    at: at(1),
                    message: format!("bad header: {e}"),
                }]
            })?
            .clone();
        let mut errors = Vec::new();
        let mut columns = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            if !required.contains(&h) && !optional.contains(&h) {
                errors.push(ConfigError {
                    at: At {
                        file: file.clone(),
                        line: 1,
                        column: i + 1,
                    },
                    message: format!(
                        "unknown column `{h}` (expected: {})",
                        required
                            .iter()
                            .chain(optional)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            if columns.insert(h.to_string(), i).is_some() {
                errors.push(ConfigError {
                    at: at(1),
                    message: format!("column `{h}` appears twice"),
                });
            }
        }
        for r in required {
            if !columns.contains_key(*r) {
                errors.push(ConfigError {
                    at: at(1),
                    message: format!("missing column `{r}`"),
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
            Ok(Table {
                file,
                columns,
                rows,
            })
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

/// Reads a units CSV file.
pub fn units(path: &Path) -> Result<Vec<UnitDraft>, Vec<ConfigError>> {
    let t = Table::read(
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
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Reads a cameras CSV file.
pub fn cameras(path: &Path) -> Result<Vec<CameraDraft>, Vec<ConfigError>> {
    let t = Table::read(
        path,
        &["id", "name", "township", "url"],
        &[
            "username",
            "password_env",
            "password_file",
            "vqd_interval_s",
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
            place: t.place(line, row),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
