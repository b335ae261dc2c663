//! The operator console: a page and its assets, embedded in the binary (no CDN, no external
//! font: public-security video networks are isolated). Assets are served under names that carry
//! a digest of their content, cached for good; the page itself is never cached, so a new build
//! is picked up at once. Every console answer forbids framing, MIME sniffing, inline script and
//! any origin but the gateway's own (Content-Security-Policy). The console is a client of the
//! API like any other: it adds no data route.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// What the console's page may load and do.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; media-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// An embedded asset: its served name (with the digest) and its content.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../console/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../console/app.css"),
    },
];

const INDEX: &str = include_str!("../../console/index.html");

/// `app.js` → `app.3f2a9c1e.js`.
fn served_name(a: &Asset) -> String {
    let digest = Sha256::digest(a.body.as_bytes());
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    match a.name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{short}.{ext}"),
        None => format!("{}.{short}", a.name),
    }
}

struct Built {
    index: String,
    assets: Vec<(String, &'static Asset)>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let assets: Vec<(String, &'static Asset)> =
            ASSETS.iter().map(|a| (served_name(a), a)).collect();
        let mut index = INDEX.to_string();
        for (served, a) in &assets {
            index = index.replace(&format!("{{{{{}}}}}", a.name), &format!("/assets/{served}"));
        }
        Built { index, assets }
    })
}

/// The headers every console answer carries.
fn guarded(mut r: Response, cache: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `GET /`: the console's page.
pub async fn index() -> Response {
    let page = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        built().index.clone(),
    );
    guarded(page.into_response(), "no-cache")
}

/// `GET /assets/{file}`: an asset by its digest-carrying name.
pub async fn asset(Path(file): Path<String>) -> Response {
    match built().assets.iter().find(|(served, _)| *served == file) {
        Some((_, a)) => guarded(
            ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response(),
            "public, max-age=31536000, immutable",
        ),
        None => guarded(
            super::error::ApiError::not_found("asset_not_found", format!("no asset `{file}`"))
                .into_response(),
            "no-cache",
        ),
    }
}
