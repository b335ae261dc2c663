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
}

impl Validator {
    /// `[api]`: an address to listen on, a sane body limit, tokens with unique names and
    /// values of at least 16 characters, each with a known scope.
    pub(super) fn api(&mut self, raw: &ApiSection, known: &Townships) -> ApiConfig {
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
            if let Some(token) = self.token(t, known) {
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
        }
    }

    /// One token: its scope and its secret.
    fn token(&mut self, t: &TokenEntry, known: &Townships) -> Option<Token> {
        let name = t.name.get_ref();
        let at = self.at(&t.name);
        let scope = match t.scope.get_ref().as_str() {
            "admin" => Some(Scope::Admin),
            "ingest" => Some(Scope::Ingest),
            s => match s.strip_prefix("township:") {
                Some(code) if known.contains(code) => Some(Scope::Township(code.to_string())),
                Some(code) => {
                    let known = known.known();
                    self.err(self.at(&t.scope), format!("token `{name}` `scope`: township `{code}` does not exist (known: {known})"));
                    None
                }
                None => {
                    self.err(self.at(&t.scope), format!("token `{name}` `scope`: `{s}` is not `admin`, `ingest` or `township:<code>`"));
                    None
                }
            },
        };
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
}
