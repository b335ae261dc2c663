//! The API's HTTP server: every connection has a deadline and there is a limit on how many.
//!
//! * A request's headers must arrive within `header_timeout` (a slowloris holds nothing).
//! * A request must be answered within `request_timeout` (reading a stalled body included);
//!   past it, 408. Streams (SSE) are answered at once and then run as long as the client reads.
//! * A `Content-Length` beyond the body limit is refused with 413 before anything is read.
//! * With TLS, the handshake must be done within `header_timeout` too; a failed one is counted
//!   (`gateway_api_tls_handshake_failures_total`) and the connection closed. A reload replaces
//!   the certificate for new connections.
//! * At most `max_connections` connections are served; beyond, up to as many again get a
//!   minimal service — `/healthz` answers, everything else 503 `busy` — and are closed after
//!   one request; beyond that, connections are closed at once.

use crate::api::error::ApiError;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The API's TLS, when it speaks HTTPS: the server configuration (a reload replaces it) and
/// the count of failed handshakes.
#[derive(Clone)]
pub struct ServeTls {
    /// Certificate, key, client verification.
    pub config: Arc<alerts::live::Live<rustls::ServerConfig>>,
    /// `gateway_api_tls_handshake_failures_total`.
    pub failures: prometheus::IntCounter,
}

/// Limits of the API server.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Headers must arrive within this.
    pub header_timeout: Duration,
    /// A request must be answered within this.
    pub request_timeout: Duration,
    /// Connections served at most.
    pub max_connections: usize,
    /// Largest request body (a larger `Content-Length` is refused at once).
    pub max_body: usize,
}

/// Refuses a declared oversize body before reading it (a push counted like any rejected
/// message), and answers 408 to a request that takes longer than `request_timeout`.
pub async fn bounded(
    limits: Arc<ServeLimits>,
    metrics: alerts::Metrics,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        if req.uri().path().starts_with("/api/v1/ingest/") {
            metrics.ingested(ingest::http_push::SOURCE);
            metrics.rejected(ingest::http_push::SOURCE, "too_large");
        }
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body is larger than {} bytes", limits.max_body),
        )
        .into_response();
    }
    match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request was not complete within {} s",
                limits.request_timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

/// What a connection beyond the limit is served: `/healthz`, and 503 `busy` for the rest.
fn busy_router() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(|| async {
            ApiError::unavailable("busy", "too many connections; retry shortly", 1)
        })
}

/// One accepted connection, with what serving it takes.
struct Conn {
    app: Router,
    keep_alive: bool,
    header_timeout: Duration,
    permit: OwnedSemaphorePermit,
}

impl Conn {
    /// Serves HTTP/1 on `io` in a task of its own, watched for the graceful shutdown.
    fn serve<I>(self, io: I, watcher: Watcher)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(self.keep_alive);
        let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(self.app));
        let conn = watcher.watch(conn);
        let permit = self.permit;
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish
/// (at most 10 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<ServeTls>,
    shutdown: impl Future<Output = ()>,
) {
    let served = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let overflow = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let busy = busy_router();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (permit, app, keep_alive) = match served.clone().try_acquire_owned() {
            Ok(p) => (p, router.clone(), true),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(p) => (p, busy.clone(), false),
                Err(_) => continue, // dropped: closed at once
            },
        };
        let conn = Conn {
            app,
            keep_alive,
            header_timeout: limits.header_timeout,
            permit,
        };
        match &tls {
            None => conn.serve(stream, graceful.watcher()),
            Some(tls) => {
                let (tls, watcher) = (tls.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.get());
                    let handshake =
                        tokio::time::timeout(conn.header_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => conn.serve(stream, watcher),
                        Ok(Err(e)) => {
                            tls.failures.inc();
                            tracing::debug!(error = %e, "API TLS handshake failed");
                        }
                        Err(_) => {
                            tls.failures.inc();
                            tracing::debug!("API TLS handshake not done in time");
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("API connections still open after 10 s; closing them");
    }
}

/// The HTTP conventions every answer follows: an `X-Request-Id` (the client's, or a new one)
/// echoed in the answer and in the access log (at debug); gzip or brotli when the client
/// accepts it (not for event streams or pictures); CORS for the configured origins only.
pub fn conventions(router: Router, cors_origins: &[String]) -> Router {
    use axum::http::{HeaderName, HeaderValue, Method};
    use tower_http::compression::CompressionLayer;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = router.layer(CompressionLayer::new());
    if !cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("idempotency-key"),
                ])
                .expose_headers([request_id.clone(), header::RETRY_AFTER]),
        );
    }
    let access_log = TraceLayer::new_for_http()
        .make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), request_id = id)
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
        // a 5xx is an answer like any other here (503 back-pressure is counted, an outage
        // logged once where it happens): not an ERROR line per request
        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG));
    router
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(access_log)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
