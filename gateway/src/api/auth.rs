//! Bearer tokens and scopes.
//!
//! Tokens are kept as SHA-256 digests in a hash map, so a lookup neither compares secrets byte by
//! byte (no timing oracle) nor keeps plain tokens in the API's memory structures.

use super::error::ApiError;
use super::AppState;
use crate::config::{Scope, Token};
use alerts::case::Role;
use alerts::outbox::EventState;
use alerts::registry::department_route;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's configured name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
}

impl Principal {
    /// Whether it may see township `township`'s cameras, units and events.
    pub fn can_see(&self, township: &str) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Township(t) => t == township,
            Scope::Ingest | Scope::Department(_) => false,
        }
    }

    /// Whether it may see (and act on) this stored event: a township its own events (not the
    /// copies routed to a department or the city), a department what is assigned to it and
    /// its own notices.
    pub fn can_see_event(&self, st: &EventState) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Township(t) => *t == st.township && st.route.is_none(),
            Scope::Department(d) => {
                st.case.as_ref().and_then(|c| c.assigned_to.as_deref()) == Some(d.as_str())
                    || st.route.as_deref() == Some(department_route(d).as_str())
            }
            Scope::Ingest => false,
        }
    }

    /// The role it acts in on a case.
    pub fn role(&self) -> Role {
        match &self.scope {
            Scope::Admin => Role::Admin,
            Scope::Department(d) => Role::Department(d.clone()),
            Scope::Township(_) | Scope::Ingest => Role::Township,
        }
    }

    /// Fails unless it may read events (every scope but `ingest`).
    pub fn require_events(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Ingest => Err(ApiError::forbidden(format!(
                "token `{}` has scope `ingest`, which cannot read events",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// The townships it may see: `None` = all.
    pub fn townships(&self) -> Result<Option<Vec<String>>, ApiError> {
        match &self.scope {
            Scope::Admin => Ok(None),
            Scope::Township(t) => Ok(Some(vec![t.clone()])),
            Scope::Ingest => Err(ApiError::forbidden(format!(
                "token `{}` has scope `ingest`, which cannot read events",
                self.name
            ))),
            Scope::Department(_) => Err(ApiError::forbidden(format!(
                "token `{}` has a department scope: it sees only the events assigned to it",
                self.name
            ))),
        }
    }

    /// Fails unless it may see `township`.
    pub fn require_township(&self, township: &str) -> Result<(), ApiError> {
        if self.can_see(township) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "token `{}` cannot see township `{township}`",
                self.name
            )))
        }
    }

    /// Fails unless it may read, and may see `township` when a list is filtered by one.
    pub fn require_filter(&self, township: Option<&str>) -> Result<(), ApiError> {
        self.townships()?;
        township.map_or(Ok(()), |t| self.require_township(t))
    }

    /// Fails unless admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "token `{}` lacks scope `admin`",
                self.name
            ))),
        }
    }

    /// Fails unless it may push signals.
    pub fn require_ingest(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin | Scope::Ingest => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "token `{}` lacks scope `ingest` (or `admin`)",
                self.name
            ))),
        }
    }
}

/// The token table.
#[derive(Debug, Default)]
pub struct Auth {
    by_digest: HashMap<[u8; 32], Principal>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Builds the table.
    pub fn new(tokens: &[Token]) -> Self {
        Self {
            by_digest: tokens
                .iter()
                .map(|t| {
                    (
                        digest(t.secret.expose()),
                        Principal {
                            name: t.name.clone(),
                            scope: t.scope.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Identifies the caller from `Authorization: Bearer …`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing `Authorization: Bearer <token>` header")
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("`Authorization` header is not `Bearer <token>`")
            })?;
        self.by_digest
            .get(&digest(token))
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        state.auth.get().authenticate(&parts.headers)
    }
}
