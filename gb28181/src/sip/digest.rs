//! Digest authentication of REGISTER (RFC 2617, MD5): the server issues nonces and checks the
//! answers. GB/T 28181 devices answer with or without `qop`; the challenge offers none (many
//! devices refuse one) and both answer forms are accepted.

use chrono::{DateTime, Duration, Utc};
use md5::{Digest as _, Md5};
use std::collections::{HashMap, VecDeque};

/// How long an issued nonce may be answered.
const NONCE_LIFETIME_S: i64 = 300;

/// Issued nonces kept at most (the oldest are forgotten first): a flood of unauthenticated
/// REGISTERs cannot grow this beyond a few hundred KB.
const MAX_NONCES: usize = 20_000;

/// Why an answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No usable `Authorization: Digest …` header.
    Missing,
    /// The nonce was not issued here or has expired: challenge again.
    Stale,
    /// The answer does not match the password.
    Wrong,
}

/// The nonces this server issued.
#[derive(Debug, Default)]
pub struct Nonces {
    issued: HashMap<String, DateTime<Utc>>,
    order: VecDeque<String>,
}

impl Nonces {
    /// A new nonce, issued at `now`.
    pub fn issue(&mut self, now: DateTime<Utc>) -> String {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        while self.order.len() >= MAX_NONCES {
            if let Some(old) = self.order.pop_front() {
                self.issued.remove(&old);
            }
        }
        self.issued.insert(nonce.clone(), now);
        self.order.push_back(nonce.clone());
        nonce
    }

    /// Checks an `Authorization` header value against `password` for `method` at `now`.
    pub fn check(
        &self,
        header: Option<&str>,
        method: &str,
        username: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let params = header.and_then(parse).ok_or(Refusal::Missing)?;
        let get = |k: &str| params.get(k).map(String::as_str);
        let (Some(nonce), Some(uri), Some(response)) = (get("nonce"), get("uri"), get("response"))
        else {
            return Err(Refusal::Missing);
        };
        match self.issued.get(nonce) {
            Some(at) if now - *at <= Duration::seconds(NONCE_LIFETIME_S) => {}
            _ => return Err(Refusal::Stale),
        }
        let realm = get("realm").unwrap_or_default();
        let user = get("username").unwrap_or(username);
        let expected = answer(&Answer {
            username: user,
            realm,
            password,
            method,
            uri,
            nonce,
            qop: get("qop").map(|q| (q, get("nc").unwrap_or(""), get("cnonce").unwrap_or(""))),
        });
        if user == username && expected.eq_ignore_ascii_case(response) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }
}

/// What a digest answer is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The user (a GB/T 28181 device id).
    pub username: &'a str,
    /// The realm of the challenge.
    pub realm: &'a str,
    /// The password.
    pub password: &'a str,
    /// The request's method.
    pub method: &'a str,
    /// The `uri` of the Authorization header, exactly as written.
    pub uri: &'a str,
    /// The nonce of the challenge.
    pub nonce: &'a str,
    /// `qop`, `nc` and `cnonce` when the answer uses a qop.
    pub qop: Option<(&'a str, &'a str, &'a str)>,
}

/// The `response` of a digest answer (lower-case hex).
pub fn answer(a: &Answer<'_>) -> String {
    let md5 = |s: String| hex::encode(Md5::digest(s.as_bytes()));
    let ha1 = md5(format!("{}:{}:{}", a.username, a.realm, a.password));
    let ha2 = md5(format!("{}:{}", a.method, a.uri));
    match a.qop {
        Some((qop, nc, cnonce)) => md5(format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", a.nonce)),
        None => md5(format!("{ha1}:{}:{ha2}", a.nonce)),
    }
}

/// The parameters of `Digest k=v, k="v", …` (names in lower case), `None` for another scheme.
pub fn parse(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim_start();
    let (scheme, rest) = rest.split_at(rest.find(char::is_whitespace)?);
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut params = HashMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let name = s[..eq].trim().to_ascii_lowercase();
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = s.strip_prefix('"') {
            let end = quoted.find('"')?;
            value = quoted[..end].to_string();
            s = &quoted[end + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        params.insert(name, value);
        s = s.trim_start().trim_start_matches(',').trim_start();
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(nonce: &str, password: &str, qop: bool) -> String {
        let uri = "sip:34020000002000000001@3402000000";
        let qop_part = qop.then_some(("auth", "00000001", "c0ffee"));
        let response = answer(&Answer {
            username: "34020000001320000001",
            realm: "3402000000",
            password,
            method: "REGISTER",
            uri,
            nonce,
            qop: qop_part,
        });
        let mut h = format!(
            "Digest username=\"34020000001320000001\", realm=\"3402000000\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5"
        );
        if qop {
            h.push_str(", qop=auth, nc=00000001, cnonce=\"c0ffee\"");
        }
        h
    }

    #[test]
    fn answers_with_and_without_qop_pass_and_wrong_or_stale_ones_do_not() {
        let t0 = Utc::now();
        let mut nonces = Nonces::default();
        let n = nonces.issue(t0);
        let dev = "34020000001320000001";
        for qop in [false, true] {
            let h = header(&n, "12345678", qop);
            assert_eq!(
                nonces.check(Some(&h), "REGISTER", dev, "12345678", t0),
                Ok(())
            );
            assert_eq!(
                nonces.check(Some(&h), "REGISTER", dev, "other", t0),
                Err(Refusal::Wrong)
            );
            assert_eq!(
                nonces.check(Some(&h), "REGISTER", "34020000001320000009", "12345678", t0),
                Err(Refusal::Wrong)
            );
        }
        let late = t0 + Duration::seconds(NONCE_LIFETIME_S + 1);
        let h = header(&n, "12345678", false);
        assert_eq!(
            nonces.check(Some(&h), "REGISTER", dev, "12345678", late),
            Err(Refusal::Stale)
        );
        let foreign = header("not-issued-here", "12345678", false);
        assert_eq!(
            nonces.check(Some(&foreign), "REGISTER", dev, "12345678", t0),
            Err(Refusal::Stale)
        );
        assert_eq!(
            nonces.check(None, "REGISTER", dev, "12345678", t0),
            Err(Refusal::Missing)
        );
        assert_eq!(
            nonces.check(Some("Basic abc"), "REGISTER", dev, "1", t0),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn nonces_are_bounded() {
        let mut nonces = Nonces::default();
        let t = Utc::now();
        let first = nonces.issue(t);
        for _ in 0..MAX_NONCES {
            nonces.issue(t);
        }
        assert_eq!(nonces.issued.len(), MAX_NONCES);
        assert!(!nonces.issued.contains_key(&first));
    }
}
