//! The `[server] metrics` listener: HTTP/1.1, `GET /metrics` and `GET /healthz` only.
//!
//! Bounded like the other listeners: at most [`MAX_CONNECTIONS`] at once (more are
//! closed at once), request headers within [`HEADER_TIMEOUT`] and [`MAX_HEADER_BYTES`],
//! every connection closed after [`CONNECTION_DEADLINE`], request bodies never read.
//! It shares nothing with the mail path but the counters it reads: it runs on its own
//! task, and when its listener breaks it stops alone (logged), never the daemon.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;

use crate::server::accept::Connections;
use crate::server::listen::Bound;
use crate::state::Shared;

/// Concurrent scrape connections: a Prometheus server or two and a health probe.
pub const MAX_CONNECTIONS: usize = 16;
/// The request line and headers must arrive within this long.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed this long after it was accepted, keep-alive or not.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// Read buffer, and so the largest request head (hyper's smallest allowed value).
pub const MAX_HEADER_BYTES: usize = 8192;

/// Serves until `shutdown`. Returns the listener's error if it broke.
pub async fn serve(
    mut listener: Bound,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut connections = Connections::new(MAX_CONNECTIONS);
    let result = connections
        .run(&mut listener, &mut shutdown, "metrics", |stream| {
            connection(stream, shared.clone())
        })
        .await;
    // Scrapes are short and have nothing to finish for anyone.
    connections.drain(Duration::ZERO).await;
    result
}

async fn connection(stream: crate::server::stream::Stream, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(respond(&req, &shared)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_DEADLINE, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics: connection ended with an error"),
        Err(_) => tracing::debug!("metrics: connection deadline reached; closing it"),
    }
}

/// The answer to one request (no body is read: both resources are GET).
pub fn respond<B>(req: &Request<B>, shared: &Shared) -> Response<Full<Bytes>> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or HEAD only\n".into(),
            head,
        );
    }
    let g = shared.current();
    match req.uri().path() {
        "/metrics" => {
            let mut r = plain(StatusCode::OK, super::render(g), head);
            r.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(super::encode::CONTENT_TYPE),
            );
            r
        }
        "/healthz" => {
            let problems = super::problems(&g);
            if problems.is_empty() {
                plain(StatusCode::OK, "ok\n".into(), head)
            } else {
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{}\n", problems.join("\n")),
                    head,
                )
            }
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found; try /metrics or /healthz\n".into(),
            head,
        ),
    }
}

fn plain(status: StatusCode, body: String, head: bool) -> Response<Full<Bytes>> {
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}
