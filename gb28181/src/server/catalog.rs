//! Catalogs arrive in pages: a response is split over several MESSAGEs with the query's SN
//! (often one item each), `SumNum` the total. Pages are gathered by (device, SN) and applied
//! once all items came — or [`CATALOG_PAGE_WAIT`] after the last page, with what came (never
//! removing a channel a partial catalog missed). A catalog NOTIFY (changes) applies at once.

use super::{Server, State};
use crate::manscdp::{self, Body, CatalogItem};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long after a catalog's last page the rest is waited for.
pub const CATALOG_PAGE_WAIT: Duration = Duration::from_secs(5);

/// Items of one catalog kept at most (a county NVR has hundreds of channels; a platform a few
/// thousand).
const MAX_ITEMS: usize = 20_000;

/// Catalogs being gathered at most (each device answers one query at a time).
const MAX_ASSEMBLIES: usize = 4_096;

/// One catalog being gathered.
#[derive(Debug)]
pub(crate) struct Assembly {
    sum: Option<usize>,
    items: Vec<CatalogItem>,
    last: Instant,
    pages: usize,
}

/// Catalogs being gathered, by (device, SN).
pub(crate) type Assemblies = HashMap<(String, u64), Assembly>;

impl Server {
    /// A page of a catalog response, or a catalog NOTIFY.
    pub(super) fn catalog_page(&self, s: &mut State, device: &str, body: &Body) {
        let (sum, items) = manscdp::catalog(body);
        if body.root.eq_ignore_ascii_case("Notify") {
            tracing::info!(device, changes = items.len(), "GB/T 28181 catalog change");
            self.apply(s, device, items, false);
            return;
        }
        let sn = body.sn.unwrap_or(0);
        let key = (device.to_string(), sn);
        if !s.catalogs.contains_key(&key) && s.catalogs.len() >= MAX_ASSEMBLIES {
            return;
        }
        let a = s.catalogs.entry(key.clone()).or_insert_with(|| Assembly {
            sum,
            items: Vec::new(),
            last: Instant::now(),
            pages: 0,
        });
        a.sum = a.sum.or(sum);
        a.pages += 1;
        a.last = Instant::now();
        let room = MAX_ITEMS.saturating_sub(a.items.len());
        a.items.extend(items.into_iter().take(room));
        if a.sum.is_some_and(|n| a.items.len() >= n) || a.items.len() >= MAX_ITEMS {
            let a = s.catalogs.remove(&key).expect("present");
            tracing::info!(
                device,
                sn,
                items = a.items.len(),
                pages = a.pages,
                "GB/T 28181 catalog received"
            );
            self.apply(s, device, a.items, true);
        }
    }

    /// Applies the catalogs whose pages stopped coming.
    pub(super) fn flush_catalogs(&self, s: &mut State, now: Instant) {
        let stale: Vec<(String, u64)> = s
            .catalogs
            .iter()
            .filter(|(_, a)| now.duration_since(a.last) >= CATALOG_PAGE_WAIT)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            let a = s.catalogs.remove(&key).expect("present");
            tracing::warn!(
                device = %key.0, sn = key.1, items = a.items.len(), expected = ?a.sum,
                "GB/T 28181 catalog incomplete; applying what came"
            );
            self.apply(s, &key.0, a.items, false);
        }
    }

    fn apply(&self, s: &mut State, device: &str, items: Vec<CatalogItem>, whole: bool) {
        s.devices
            .catalog(device, items, |d, item| self.township_of(&d.id, item));
        if let Some(d) = s.devices.by_id.get_mut(device).filter(|_| whole) {
            d.catalog_at = Some(self.pipeline.clock().now());
        }
        s.dirty = true;
        s.channels_changed = true;
    }
}
