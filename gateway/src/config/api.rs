//! `[api]`: the listen address, the body limit and the bearer tokens with their scopes.

use super::raw::{ApiSection, TokenEntry};
use super::registry::Townships;
use super::{g_listen, Validator};
use alerts::Secret;
use std::collections::HashSet;
use std::net::SocketAddr;

/// What a bearer token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    Admin,
    /// Push signals only.
    Ingest,
    /// See and act on one township's events.
    Township(String),
    /// See and act on the events assigned to one department.
    Department(String),
}

/// A token's scope in the config: `admin`, `ingest`, `township:<code>` or `department:<code>`.
fn parse_scope(s: &str) -> Option<(&'static str, Option<&str>)> {
    match s {
        "admin" => Some(("admin", None)),
        "ingest" => Some(("ingest", None)),
        _ => {
            let (what, code) = s.split_once(':')?;
            match what {
                "township" => Some(("township", Some(code))),
                "department" => Some(("department", Some(code))),
                _ => None,
            }
        }
    }
}

/// An API token.
#[derive(Debug, Clone)]
pub struct Token {
    /// Its name (for logs; never the token).
    pub name: String,
    /// The token.
    pub secret: Secret,
    /// What it may do.
    pub scope: Scope,
}

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// `/metrics` without a token.
    pub metrics_public: bool,
    /// Tokens.
    pub tokens: Vec<Token>,
    /// A request's headers must arrive within this.
    pub header_timeout: std::time::Duration,
    /// A request must be answered (its body read) within this.
    pub request_timeout: std::time::Duration,
    /// Connections served at most (as many again get `/healthz` and 503 `busy`).
    pub max_connections: usize,
    /// HTTPS, when `tls_cert` and `tls_key` are set.
    pub tls: Option<crate::tls::ApiTls>,
    /// Origins whose pages may call the API from a browser (CORS); none by default.
    pub cors_origins: Vec<String>,
}

impl Validator {
    /// `[api]`: an address to listen on, a sane body limit, tokens with unique names and
    /// values of at least 16 characters, each with a known scope.
    pub(super) fn api(
        &mut self,
        raw: &ApiSection,
        known: &Townships,
        departments: &[String],
    ) -> ApiConfig {
        let listen = match g_listen(&raw.listen) {
            Some(a) => a,
            None => {
                self.err(
                    self.at(&raw.listen),
                    format!(
                        "`listen`: `{}` is not an address like `127.0.0.1:8080`",
                        raw.listen.get_ref()
                    ),
                );
                "127.0.0.1:8080".parse().expect("valid address")
            }
        };
        if raw.max_body_bytes < 256 {
            self.err(
                self.at(&raw.listen),
                "`max_body_bytes` must be at least 256",
            );
        }
        let mut tokens = Vec::new();
        let mut names = HashSet::new();
        for t in &raw.tokens {
            if !names.insert(t.name.get_ref().clone()) {
                self.err(
                    self.at(&t.name),
                    format!("token name `{}` is used twice", t.name.get_ref()),
                );
            }
            if let Some(token) = self.token(t, known, departments) {
                if tokens.iter().any(|x: &Token| x.secret == token.secret) {
                    self.err(
                        self.at(&t.name),
                        format!(
                            "token `{}` has the same value as another token",
                            t.name.get_ref()
                        ),
                    );
                }
                tokens.push(token);
            }
        }
        ApiConfig {
            listen,
            max_body_bytes: raw.max_body_bytes,
            metrics_public: raw.metrics_public,
            tokens,
            header_timeout: std::time::Duration::from_secs(raw.header_timeout_s.max(1)),
            request_timeout: std::time::Duration::from_secs(raw.request_timeout_s.max(1)),
            max_connections: raw.max_connections.max(1),
            tls: self.api_tls(raw),
            cors_origins: self.cors_origins(raw),
        }
    }

    /// `cors_origins`: each `scheme://host[:port]`, nothing more.
    fn cors_origins(&mut self, raw: &ApiSection) -> Vec<String> {
        let mut out = Vec::new();
        for o in &raw.cors_origins {
            let v = o.get_ref();
            let ok = url::Url::parse(v).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.origin().ascii_serialization() == *v
            });
            if ok {
                out.push(v.clone());
            } else {
                self.err(
                    self.at(o),
                    format!(
                        "`cors_origins`: `{v}` is not an origin like `https://console.example.cn`"
                    ),
                );
            }
        }
        out
    }

    /// `tls_cert` and `tls_key` (both or neither), `tls_client_ca` only with them.
    fn api_tls(&mut self, raw: &ApiSection) -> Option<crate::tls::ApiTls> {
        let (cert, key) = match (&raw.tls_cert, &raw.tls_key) {
            (Some(c), Some(k)) => (c, k),
            (None, None) => {
                if let Some(ca) = &raw.tls_client_ca {
                    self.err(
                        self.at(ca),
                        "`tls_client_ca` needs `tls_cert` and `tls_key`",
                    );
                }
                return None;
            }
            (Some(one), None) | (None, Some(one)) => {
                self.err(
                    self.at(one),
                    "`tls_cert` and `tls_key` go together: give both",
                );
                return None;
            }
        };
        let ca = raw.tls_client_ca.as_ref().map(|c| self.path(c.get_ref()));
        let loaded = crate::tls::load(
            &self.path(cert.get_ref()),
            &self.path(key.get_ref()),
            ca.as_deref(),
        );
        match loaded {
            Ok(tls) => Some(tls),
            Err(e) => {
                self.err(self.at(cert), format!("[api] {e}"));
                None
            }
        }
    }

    /// One token: its scope and its secret.
    fn token(
        &mut self,
        t: &TokenEntry,
        known: &Townships,
        departments: &[String],
    ) -> Option<Token> {
        let name = t.name.get_ref();
        let at = self.at(&t.name);
        let scope = self.scope(t, known, departments);
        let draft = self.secret_draft(&t.token, &t.token_env, &t.token_file, at.clone());
        let secret = self.secret(&draft, "token", true);
        if let Some(s) = &secret {
            if s.expose().len() < 16 {
                self.err(at, format!("token `{name}` is shorter than 16 characters"));
            }
        }
        Some(Token {
            name: name.clone(),
            secret: secret?,
            scope: scope?,
        })
    }

    fn scope(
        &mut self,
        t: &TokenEntry,
        known: &Townships,
        departments: &[String],
    ) -> Option<Scope> {
        let name = t.name.get_ref();
        let s = t.scope.get_ref();
        let unknown = |what: &str, code: &str, list: String| {
            format!("token `{name}` `scope`: {what} `{code}` does not exist (known: {list})")
        };
        let (scope, err) = match parse_scope(s) {
            Some(("admin", _)) => (Some(Scope::Admin), None),
            Some(("ingest", _)) => (Some(Scope::Ingest), None),
            Some(("township", Some(code))) if known.contains(code) => {
                (Some(Scope::Township(code.to_string())), None)
            }
            Some(("township", Some(code))) => (None, Some(unknown("township", code, known.known()))),
            Some(("department", Some(code))) if departments.iter().any(|d| d == code) => {
                (Some(Scope::Department(code.to_string())), None)
            }
            Some(("department", Some(code))) => {
                (None, Some(unknown("department", code, departments.join(", "))))
            }
            _ => (None, Some(format!("token `{name}` `scope`: `{s}` is not `admin`, `ingest`, `township:<code>` or `department:<code>`"))),
        };
        if let Some(e) = err {
            self.err(self.at(&t.scope), e);
        }
        scope
    }
}
