//! Transactions, as far as GB/T 28181 needs them:
//!
//! * **Server side** ([`Answered`]): the final response to each request is kept for 32 s
//!   (RFC 3261's Timer J); a retransmission of the request gets the same bytes again and is not
//!   handled twice — an alarm sent three times over UDP is one alarm.
//! * **Client side** ([`Asking`]): a request we send waits for its final response under its
//!   branch; over UDP it is sent again after 0.5, 1, 2, 4, 4… s (Timer E) until answered or
//!   32 s have passed (Timer F).

use super::{Peer, Response, Transport};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a final response is kept for retransmitted requests, and how long a request of
/// ours waits for its answer (64 × T1).
pub const TRANSACTION_TIME: Duration = Duration::from_secs(32);

/// Kept responses at most: a flood of distinct requests cannot grow this beyond a few MB.
const MAX_KEPT: usize = 20_000;

/// Requests of ours waiting for answers at most.
const MAX_WAITING: usize = 20_000;

/// The final responses sent, by the request that got them.
#[derive(Debug, Default)]
pub struct Answered {
    kept: HashMap<String, Vec<u8>>,
    order: VecDeque<(Instant, String)>,
}

impl Answered {
    /// The key of a request: its top Via branch (else Call-ID and CSeq) with the CSeq
    /// method, and where it came from.
    pub fn key(peer: &Peer, branch: Option<&str>, call_id: &str, cseq: &str) -> String {
        match branch {
            Some(b) => format!("{}|{b}|{cseq}", peer.addr),
            None => format!("{}|{call_id}|{cseq}", peer.addr),
        }
    }

    /// The response already sent to this request, if it is a retransmission.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<&[u8]> {
        self.expire(now);
        self.kept.get(key).map(Vec::as_slice)
    }

    /// Keeps the response sent.
    pub fn keep(&mut self, key: String, bytes: Vec<u8>, now: Instant) {
        self.expire(now);
        while self.order.len() >= MAX_KEPT {
            if let Some((_, k)) = self.order.pop_front() {
                self.kept.remove(&k);
            }
        }
        if self.kept.insert(key.clone(), bytes).is_none() {
            self.order.push_back((now, key));
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < TRANSACTION_TIME {
                break;
            }
            if let Some((_, k)) = self.order.pop_front() {
                self.kept.remove(&k);
            }
        }
    }
}

/// Why a request of ours got no final response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// Nothing within 32 s.
    #[error("no answer within 32 s")]
    Timeout,
    /// Too many requests waiting already.
    #[error("too many requests waiting for answers")]
    Busy,
    /// It could not be sent.
    #[error("{0}")]
    Send(String),
}

/// Our requests waiting for their final responses, by branch.
#[derive(Default)]
pub struct Asking {
    waiting: Mutex<HashMap<String, oneshot::Sender<Response>>>,
}

impl Asking {
    /// Hands a response to the request waiting for it; `false` when none waits (a late or
    /// stray response).
    pub fn answer(&self, branch: &str, response: Response) -> bool {
        let code = response.status_code.code();
        if code < 200 {
            return self.waiting.lock().contains_key(branch);
        }
        match self.waiting.lock().remove(branch) {
            Some(tx) => {
                let _ = tx.send(response);
                true
            }
            None => false,
        }
    }

    /// Sends a request (with `branch` in its top Via) through `send`, again over UDP until
    /// answered, and waits for its final response.
    pub async fn ask<F, Fut>(
        &self,
        branch: &str,
        peer: Peer,
        bytes: Vec<u8>,
        send: F,
    ) -> Result<Response, AskError>
    where
        F: Fn(Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut rx = {
            let mut w = self.waiting.lock();
            if w.len() >= MAX_WAITING {
                return Err(AskError::Busy);
            }
            let (tx, rx) = oneshot::channel();
            w.insert(branch.to_string(), tx);
            rx
        };
        let result = async {
            let deadline = tokio::time::Instant::now() + TRANSACTION_TIME;
            let mut every = Duration::from_millis(500);
            send(bytes.clone()).await.map_err(AskError::Send)?;
            loop {
                let resend = if peer.transport == Transport::Udp {
                    (tokio::time::Instant::now() + every).min(deadline)
                } else {
                    deadline
                };
                tokio::select! {
                    r = &mut rx => return r.map_err(|_| AskError::Timeout),
                    _ = tokio::time::sleep_until(resend) => {}
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(AskError::Timeout);
                }
                every = (every * 2).min(Duration::from_secs(4));
                let _ = send(bytes.clone()).await;
            }
        }
        .await;
        self.waiting.lock().remove(branch);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn peer(transport: Transport) -> Peer {
        Peer {
            transport,
            addr: "127.0.0.1:5060".parse().unwrap(),
        }
    }

    #[test]
    fn a_retransmitted_request_finds_its_response_for_32_s() {
        let mut a = Answered::default();
        let t0 = Instant::now();
        let k = Answered::key(&peer(Transport::Udp), Some("z9hG4bK1"), "c", "1 MESSAGE");
        assert!(a.get(&k, t0).is_none());
        a.keep(k.clone(), b"SIP/2.0 200 OK".to_vec(), t0);
        assert_eq!(
            a.get(&k, t0 + Duration::from_secs(31)),
            Some(&b"SIP/2.0 200 OK"[..])
        );
        assert!(a.get(&k, t0 + TRANSACTION_TIME).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_udp_is_sent_again_until_answered_and_given_up_after_32_s() {
        let asking = Arc::new(Asking::default());
        let sent = Arc::new(AtomicUsize::new(0));
        let s = sent.clone();
        let send = move |_b: Vec<u8>| {
            let s = s.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        };
        let r = asking
            .ask("b1", peer(Transport::Udp), vec![1], send.clone())
            .await;
        assert_eq!(r.unwrap_err(), AskError::Timeout);
        // 0, 0.5, 1.5, 3.5, 7.5, 11.5, … 31.5 s
        assert_eq!(sent.load(Ordering::SeqCst), 11);

        sent.store(0, Ordering::SeqCst);
        let r = asking
            .ask("b2", peer(Transport::Tcp), vec![1], send.clone())
            .await;
        assert_eq!(r.unwrap_err(), AskError::Timeout);
        assert_eq!(sent.load(Ordering::SeqCst), 1, "TCP is reliable: sent once");

        let a = asking.clone();
        let waiter =
            tokio::spawn(async move { a.ask("b3", peer(Transport::Udp), vec![1], send).await });
        tokio::time::sleep(Duration::from_millis(700)).await;
        let ok = crate::sip::parse(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        let crate::sip::SipMessage::Response(ok) = ok else {
            panic!()
        };
        assert!(asking.answer("b3", ok));
        assert_eq!(waiter.await.unwrap().unwrap().status_code.code(), 200);
        assert!(asking.waiting.lock().is_empty());
    }
}
