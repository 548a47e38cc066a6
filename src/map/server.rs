//! The socketmap server: persistent connections from Postfix (many requests each) and
//! one-request-then-half-close connections from Exim's `${readsocket}`, both served by
//! the same loop: answer every complete request, then read more; close at EOF.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::netstring::{self, MAX_QUERY_SIZE, MAX_REPLY_SIZE};
use super::reply::{self, Query, Reply, RouteKey};
use crate::audit::Event;
use crate::policy::Verdict;
use crate::server::accept::Connections;
use crate::server::listen::Bound;
use crate::server::stream::Stream;
use crate::state::{Generation, Shared};

/// Read size per `read` call.
pub const READ_CHUNK: usize = 4096;
/// A connection idle this long is closed. Postfix itself closes idle socketmap
/// connections after 10 s; this only bounds clients that never do.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Concurrent connections; more are closed at once (Postfix retries the lookup).
pub const MAX_CONNECTIONS: usize = 1024;
/// From the first byte of a request to its reply, at most this long; a client still
/// sending then is cut off, and a lookup still running answers TEMP. The idle timeout
/// alone is per read, so a client sending one byte a second held its slot for ever.
/// Longer than the largest `[dns] timeout` (30 s), so a slow but live lookup (which may
/// first wait for an evaluation slot) still answers; shorter than Postfix's fixed 100 s
/// socketmap timeout, so Postfix reads our TEMP instead of giving up on its own.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(45);
/// On shutdown, requests in flight get this long to finish before they are cut off.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` becomes true, then drains within [`DRAIN_TIMEOUT`].
pub async fn serve(
    mut listener: Bound,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    // Each connection watches for shutdown itself, to stop between requests.
    let for_connections = shutdown.clone();
    let mut connections = Connections::new(MAX_CONNECTIONS);
    let result = connections
        .run(&mut listener, &mut shutdown, "map server", |stream| {
            connection(stream, shared.clone(), for_connections.clone())
        })
        .await;
    if let Err(e) = &result {
        // Stop, so the daemon exits and is restarted, rather than spin on a dead socket.
        tracing::error!(error = %e, "map server: the listener failed; stopping");
    }
    let cut = connections.drain(DRAIN_TIMEOUT).await;
    if cut > 0 {
        tracing::warn!(
            left = cut,
            "map server: requests still running after the drain time; cutting them off"
        );
    }
    result
}

async fn connection(mut stream: Stream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let peer = stream.peer();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // When the first byte of the request not yet answered arrived.
    let mut started: Option<Instant> = None;
    loop {
        loop {
            match netstring::decode(&mut buf, MAX_QUERY_SIZE) {
                Ok(Some(payload)) => {
                    let deadline = started.unwrap_or_else(Instant::now) + REQUEST_DEADLINE;
                    let reply = answer_by(&payload, &shared.current(), deadline).await;
                    started = None;
                    if let Err(e) = write_reply(&mut stream, &reply).await {
                        tracing::debug!(%peer, error = %e, "map server: client went away");
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // A netstring stream cannot be resynchronised: say why, then close.
                    tracing::warn!(%peer, error = %e, "map server: malformed request; closing the connection");
                    let _ = write_reply(&mut stream, &Reply::Perm(e.to_string())).await;
                    return;
                }
            }
        }
        if buf.is_empty() {
            started = None;
        } else if started.is_none() {
            // Part of the next request is here already (it came with the last read).
            started = Some(Instant::now());
        }
        if *shutdown.borrow() {
            return;
        }
        let idle_until = Instant::now() + IDLE_TIMEOUT;
        let read_until = started.map_or(idle_until, |s| (s + REQUEST_DEADLINE).min(idle_until));
        buf.reserve(READ_CHUNK);
        let had = buf.len();
        tokio::select! {
            r = tokio::time::timeout_at(read_until, stream.read_buf(&mut buf)) => match r {
                Ok(Ok(0)) => {
                    if !buf.is_empty() {
                        tracing::warn!(%peer, error = %netstring::NetstringError::Truncated, "map server: incomplete request at end of connection");
                    }
                    return;
                }
                Ok(Ok(_)) => {
                    if had == 0 {
                        started = Some(Instant::now());
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "map server: read failed");
                    return;
                }
                Err(_) => {
                    if started.is_some() {
                        tracing::warn!(%peer, deadline = ?REQUEST_DEADLINE, "map server: request not complete within the deadline; closing the connection");
                    }
                    return;
                }
            },
            _ = crate::shutdown::requested(&mut shutdown) => return,
        }
    }
}

/// [`answer`], but a lookup still running at `deadline` answers TEMP (the evaluation
/// goes on and fills the cache for Postfix's retry).
pub async fn answer_by(payload: &[u8], g: &Generation, deadline: Instant) -> Reply {
    match tokio::time::timeout_at(deadline, answer(payload, g)).await {
        Ok(reply) => reply,
        Err(_) if g.config.server.dry_run => Reply::NotFound,
        Err(_) => {
            tracing::warn!(deadline = ?REQUEST_DEADLINE, "map server: lookup not finished within the request deadline; answering TEMP");
            Reply::Temp("NTA 7516: lookup not finished in time; try again later".into())
        }
    }
}

async fn write_reply(stream: &mut Stream, reply: &Reply) -> io::Result<()> {
    let text = reply.to_string();
    debug_assert!(text.len() <= MAX_REPLY_SIZE);
    let text = if text.len() > MAX_REPLY_SIZE {
        "TEMP reply too long".to_string()
    } else {
        text
    };
    stream
        .write_all(&netstring::encode(text.as_bytes()))
        .await?;
    stream.flush().await
}

/// The `TEMP` text while the audit file cannot be written.
pub const AUDIT_UNWRITABLE: &str = "NTA 7516: the audit log cannot be written";

/// One request against one configuration generation. This is the one place where a
/// decision becomes the MTA's answer (a `portal-login` check is no decision and is
/// answered as it is):
/// - with `[server] dry_run` every answer is `NOTFOUND`, so Postfix routes as it would
///   without us; the decided answer is only logged and audited;
/// - otherwise a `route` answer whose `recipient_routed` line cannot be written to the
///   audit file becomes `TEMP` (NEN 7513: no processing without logging). The queue
///   manager keeps the message and asks again, so nothing is lost.
pub async fn answer(payload: &[u8], g: &Generation) -> Reply {
    let dry_run = g.config.server.dry_run;
    let (decided, event) = match reply::parse(payload) {
        Err(e) => {
            tracing::warn!(error = %e, "map server: bad request");
            return Reply::Perm(e.to_string());
        }
        Ok(Query::Route(key)) => route(g, &key).await,
        Ok(Query::Tls(key)) => (tls(g, &key).await, None),
        Ok(Query::Class(sender)) => (reply::class_reply(&g.config, &sender), None),
        // A login check, not a routing decision: answered as it is, dry run or not, and
        // never logged with the password.
        Ok(Query::PortalLogin(password)) => {
            let r = reply::portal_login_reply(g.portal_mark.as_deref(), &password);
            if r == Reply::NotFound {
                tracing::warn!(
                    "map server: portal-login with a password that is not the portal's (is [portal] mail_key the same file for the portal and this daemon?)"
                );
            }
            return r;
        }
    };
    if dry_run {
        tracing::info!(would_reply = %decided, "dry run: answering NOTFOUND instead");
    }
    let Some(mut event) = event else {
        return if dry_run { Reply::NotFound } else { decided };
    };
    if let Event::RecipientRouted { route, .. } = &mut event
        && dry_run
    {
        *route = format!("NOTFOUND (dry run; decided: {route})");
    }
    match (g.auditor.record(event), dry_run) {
        (_, true) => Reply::NotFound,
        (true, false) => decided,
        (false, false) => Reply::Temp(AUDIT_UNWRITABLE.into()),
    }
}

/// The route for one recipient, and its `recipient_routed` event (not yet recorded).
async fn route(g: &Generation, key: &str) -> (Reply, Option<Event>) {
    // The cached decision is shared (Arc): borrow its verdict rather than copy it.
    let (decision, decided);
    let (shown, verdict) = match reply::route_key(&g.config, key) {
        RouteKey::Pass => return (Reply::NotFound, None),
        // Not a routing decision (an own address, no DNS): the MTA's ordinary lookup
        // result, like `Pass`, but to the portal.
        RouteKey::PortalAddress(hop) => return (Reply::Ok(format!("nta-portal:{hop}")), None),
        RouteKey::Domain(domain) => {
            decision = g.engine.decide(&domain).await;
            (domain.to_string(), &decision.verdict)
        }
        RouteKey::Decided { shown, verdict } => {
            decided = verdict;
            (shown, &decided)
        }
    };
    let reply = reply::route_reply(&g.config, &shown, verdict);
    g.metrics.route(verdict);
    let reasons: Vec<&str> = verdict.reasons().iter().map(|r| r.code.as_str()).collect();
    let evidence = match verdict {
        Verdict::Compliant(c) => c.evidence.to_string(),
        _ => String::new(),
    };
    let event = Event::RecipientRouted {
        queue_id: None,
        recipient_domain: reply::sanitize(&shown, reply::MAX_SHOWN_LEN),
        route: reply.to_string(),
        verdict: verdict.into(),
        reasons: reasons.iter().map(|r| r.to_string()).collect(),
        evidence: evidence.clone(),
    };
    // The recipient_routed audit event says this at INFO; this line adds nothing for
    // operators, so it stays out of the journal unless asked for.
    tracing::debug!(
        rcpt_domain = %shown,
        verdict = verdict.label(),
        reasons = %reasons.join(","),
        evidence = %evidence,
        route = %reply,
        "route decision"
    );
    (reply, Some(event))
}

async fn tls(g: &Generation, key: &str) -> Reply {
    let Some(name) = reply::tls_name(key) else {
        return Reply::NotFound;
    };
    // An ntamx host of a compliant domain: known from that domain's verdict.
    if g.engine.is_dane_target(&name) {
        return Reply::Ok("dane-only".into());
    }
    if g.config.is_own_domain(&name) {
        return Reply::NotFound;
    }
    let decision = g.engine.decide(&name).await;
    tracing::debug!(next_hop = %name, verdict = decision.verdict.label(), "tls policy lookup");
    match &decision.verdict {
        Verdict::Compliant(_) => Reply::Ok("dane-only".into()),
        // Unknown status of a next hop: deferring this delivery is safer than sending
        // with a weaker TLS policy than the route may require.
        Verdict::Temporary { reason } => Reply::Temp(reply::sanitize(
            &format!("NTA 7516: TLS policy for {name}: {}", reason.message),
            reply::MAX_REASON_LEN,
        )),
        Verdict::NotCompliant { .. } => Reply::NotFound,
    }
}
