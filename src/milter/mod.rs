//! The milter front-end (indymilter): collects each message, asks `plan` what to do at
//! end of data, applies it, and answers 4xx on any failure.
//!
//! Per connection the configuration generation is taken once at connect, so a reload
//! never changes the rules in the middle of a message.

mod budget;
mod decide;
mod guard;
mod headers;
mod tally;
mod transport;

use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use indymilter::{
    Actions, Callbacks, Context, ContextActions, EomContext, MacroStage, NegotiateContext,
    ProtoOpts, SetErrorReply, SocketInfo, Status,
};
use tokio::sync::watch;

use crate::audit::{Auditor, Event, Stage};
use crate::domain::address_domain;
use crate::message::footer::MAX_MESSAGE_SIZE;
use crate::message::plan::{self, Received};
use crate::server::listen::Bound;
use crate::state::{Generation, Shared};
pub use budget::BodyBudget;
use decide::{Answer, audit_unwritable, decide};
pub use decide::{MAX_LARGE_PLANS, OFF_LOOP_BODY_BYTES};

/// The actions we need; a Postfix that does not offer all of them is refused at
/// negotiation (the session ends and `milter_default_action = tempfail` applies).
pub const REQUIRED_ACTIONS: Actions = Actions::ADD_HEADER
    .union(Actions::CHANGE_HEADER)
    .union(Actions::REPLACE_BODY);
/// Concurrent milter connections (one per smtpd/cleanup process that uses us).
pub const MAX_CONNECTIONS: usize = 1024;
pub use headers::{MAX_HEADER_BYTES, MAX_HEADERS};
/// A milter connection on which the MTA sends nothing (and takes no reply) for this long
/// is closed. indymilter's default is libmilter's 7,210 s, which let a stuck or hostile
/// client hold one of [`MAX_CONNECTIONS`] for two hours. Postfix waits at most
/// `milter_content_timeout` (300 s) for us and its smtpd at most `smtpd_timeout` (300 s)
/// for its client between commands, so a live MTA is never silent this long.
pub const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// The macros asked of the MTA per stage: the TLS session (inbound verdict), the queue
/// id (log lines), the SASL user (direction), the envelope, and each recipient's
/// transport (`X-NTA7516-Route: standard` only when all are remote SMTP).
pub const REQUESTED_MACROS: [(MacroStage, &str); 5] = [
    (MacroStage::Helo, "{tls_version} {cipher}"),
    (MacroStage::Mail, "i {auth_authen} {mail_addr}"),
    (MacroStage::Rcpt, "i {rcpt_addr} {rcpt_mailer}"),
    (MacroStage::Eoh, "i"),
    (MacroStage::Eom, "i"),
];

/// Stages at which we never refuse, so the MTA need not wait for a reply: one round trip
/// per header (and per command) was the largest single cost of a message on real Postfix
/// (bench/README.md). Anything wrong is refused at end of data, where we always reply.
pub const NOREPLY_STAGES: ProtoOpts = ProtoOpts::NOREPLY_CONNECT
    .union(ProtoOpts::NOREPLY_HELO)
    .union(ProtoOpts::NOREPLY_MAIL)
    .union(ProtoOpts::NOREPLY_RCPT)
    .union(ProtoOpts::NOREPLY_HEADER)
    .union(ProtoOpts::NOREPLY_BODY);

/// Connection state, kept in indymilter's per-connection `data`.
pub struct Conn {
    generation: Arc<Generation>,
    client: Option<IpAddr>,
    client_name: String,
    helo: String,
    tls_version: Option<String>,
    cipher: Option<String>,
    /// Postfix sends header values verbatim (LEADING_SPACE negotiated): needed to verify
    /// DKIM signatures with simple header canonicalisation byte for byte.
    leading_space: bool,
    /// The MTA offered QUARANTINE (used only for honoured DMARC p=quarantine).
    can_quarantine: bool,
    /// The stages negotiated without replies (subset of NOREPLY_STAGES).
    noreply: ProtoOpts,
    msg: Msg,
}

impl Conn {
    fn new(generation: Arc<Generation>) -> Self {
        Self {
            generation,
            client: None,
            client_name: String::new(),
            helo: String::new(),
            tls_version: None,
            cipher: None,
            leading_space: false,
            can_quarantine: false,
            noreply: ProtoOpts::empty(),
            msg: Msg::default(),
        }
    }
}

#[derive(Default)]
struct Msg {
    queue_id: Option<String>,
    auth_user: Option<String>,
    received: Received,
    header_limit: headers::Limit,
    /// The share of [`budget::BODY_BUFFER_BUDGET`] this message's body holds; given back
    /// when the message is dropped (after end of data, abort, or the next MAIL).
    body_bytes: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The status for a stage where we never refuse: no reply when it was negotiated away.
fn carry_on(conn: Option<&Conn>, stage: ProtoOpts) -> Status {
    match conn {
        Some(c) if c.noreply.contains(stage) => Status::Noreply,
        Some(_) => Status::Continue,
        // No state: refusing here is only possible when a reply is expected; eom refuses
        // in any case.
        None => Status::Tempfail,
    }
}

fn macro_str<T: Send>(cx: &Context<T>, name: &CStr) -> Option<String> {
    cx.macros
        .get(name)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

fn arg0(args: &[CString]) -> String {
    args.first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

async fn negotiate(
    cx: &mut NegotiateContext<Conn>,
    shared: Arc<Shared>,
    actions: Actions,
    opts: ProtoOpts,
) -> Status {
    if !actions.contains(REQUIRED_ACTIONS) {
        tracing::error!(
            offered = ?actions,
            required = ?REQUIRED_ACTIONS,
            "milter: the MTA does not offer the actions nta7516-milter needs (add/change header, replace body); refusing the session"
        );
        return Status::Reject;
    }
    let mut conn = Conn::new(shared.current());
    conn.can_quarantine = actions.contains(Actions::QUARANTINE);
    conn.leading_space = opts.contains(ProtoOpts::LEADING_SPACE);
    cx.requested_actions = REQUIRED_ACTIONS
        | if conn.can_quarantine {
            Actions::QUARANTINE
        } else {
            Actions::empty()
        };
    if conn.leading_space {
        cx.requested_opts |= ProtoOpts::LEADING_SPACE;
    }
    conn.noreply = opts & NOREPLY_STAGES;
    cx.requested_opts |= conn.noreply;
    cx.data = Some(conn);
    for (stage, list) in REQUESTED_MACROS {
        if let Ok(s) = CString::new(list) {
            cx.requested_macros.insert(stage, s);
        }
    }
    Status::Continue
}

async fn connect(
    cx: &mut Context<Conn>,
    shared: Arc<Shared>,
    hostname: CString,
    socket: SocketInfo,
) -> Status {
    let client = match socket {
        SocketInfo::Inet(a) => Some(a.ip()),
        _ => None,
    };
    let conn = cx.data.get_or_insert_with(|| Conn::new(shared.current()));
    conn.client = client;
    conn.client_name = hostname.to_string_lossy().into_owned();
    carry_on(cx.data.as_ref(), ProtoOpts::NOREPLY_CONNECT)
}

async fn helo(cx: &mut Context<Conn>, name: CString) -> Status {
    let tls_version = macro_str(cx, c"{tls_version}");
    let cipher = macro_str(cx, c"{cipher}");
    let Some(conn) = cx.data.as_mut() else {
        return carry_on(None, ProtoOpts::NOREPLY_HELO);
    };
    // After STARTTLS the client says EHLO again, and then the TLS macros are set.
    conn.helo = name.to_string_lossy().into_owned();
    conn.tls_version = tls_version;
    conn.cipher = cipher;
    carry_on(cx.data.as_ref(), ProtoOpts::NOREPLY_HELO)
}

async fn mail(cx: &mut Context<Conn>, args: Vec<CString>) -> Status {
    let auth_user = macro_str(cx, c"{auth_authen}");
    let queue_id = macro_str(cx, c"i");
    let Some(conn) = cx.data.as_mut() else {
        return carry_on(None, ProtoOpts::NOREPLY_MAIL);
    };
    conn.msg = Msg {
        queue_id,
        auth_user,
        received: Received {
            sender: arg0(&args),
            ..Received::default()
        },
        header_limit: headers::Limit::default(),
        body_bytes: None,
    };
    carry_on(cx.data.as_ref(), ProtoOpts::NOREPLY_MAIL)
}

async fn rcpt(cx: &mut Context<Conn>, args: Vec<CString>) -> Status {
    let mailer = macro_str(cx, c"{rcpt_mailer}");
    let queue_id = macro_str(cx, c"i");
    let Some(conn) = cx.data.as_mut() else {
        return carry_on(None, ProtoOpts::NOREPLY_RCPT);
    };
    let rcpt = arg0(&args);
    if conn.msg.queue_id.is_none() {
        conn.msg.queue_id = queue_id;
    }
    conn.msg.received.rcpt_mailers.push(mailer);
    conn.msg.received.rcpts.push(rcpt.clone());
    // Warm the verdict cache: the queue manager asks the map server for this domain
    // again at delivery, and then the answer is already there. Only a head start: with
    // every evaluation slot busy it is skipped, so a session naming thousands of new
    // domains cannot hold thousands of DNS rounds (and their sockets) at once.
    if let Some(domain) = address_domain(&rcpt)
        && !conn.generation.config.is_own_domain(&domain)
        && conn.generation.engine.prefetch(&domain) == crate::engine::Prefetch::Skipped
    {
        tracing::debug!(rcpt_domain = %domain, "all evaluation slots busy: prefetch skipped");
    }
    carry_on(cx.data.as_ref(), ProtoOpts::NOREPLY_RCPT)
}

async fn header(cx: &mut Context<Conn>, name: CString, value: CString) -> Status {
    let Some(conn) = cx.data.as_mut() else {
        return carry_on(None, ProtoOpts::NOREPLY_HEADER);
    };
    let msg = &mut conn.msg;
    headers::store(
        &mut msg.received.headers,
        &mut msg.header_limit,
        name,
        value,
        conn.leading_space,
    );
    carry_on(cx.data.as_ref(), ProtoOpts::NOREPLY_HEADER)
}

async fn body(cx: &mut Context<Conn>, chunk: Bytes, budget: &budget::BodyBudget) -> Status {
    let Some(conn) = cx.data.as_mut() else {
        return carry_on(None, ProtoOpts::NOREPLY_BODY);
    };
    let msg = &mut conn.msg;
    let r = &mut msg.received;
    if r.body_overflow || r.body_over_budget {
        // Already given up on keeping this body; the outcome is settled at end of data.
    } else if r.body.len() + chunk.len() > MAX_MESSAGE_SIZE {
        r.body_overflow = true;
        r.body = Vec::new();
        msg.body_bytes = None;
    } else if budget.take(&mut msg.body_bytes, chunk.len()) {
        r.body.extend_from_slice(&chunk);
    } else {
        tracing::warn!(
            queue_id = msg.queue_id.as_deref().unwrap_or("?"),
            budget = budget::BODY_BUFFER_BUDGET,
            "milter: body buffer budget spent by other messages; this one will be deferred (451)"
        );
        r.body_over_budget = true;
        r.body = Vec::new();
        msg.body_bytes = None;
    }
    carry_on(cx.data.as_ref(), ProtoOpts::NOREPLY_BODY)
}

/// Every refusal ends here: one SMTP reply with the reason, one audit event. A 451 keeps
/// the message at the client (NTA 7516 6.1.4: no loss).
fn refuse(cx: &mut EomContext<Conn>, answer: &Answer, queue_id: &str, auditor: &Auditor) -> Status {
    let Some((mut code, mut enhanced, mut text)) = answer.refusal() else {
        return Status::Continue;
    };
    tracing::warn!(queue_id, code, reason = %text, "milter: refusing the message");
    let event = |code: &str, reason: &str| {
        let (queue_id, stage, reason) = (
            Some(queue_id.to_string()),
            Stage::EndOfMessage,
            reason.to_string(),
        );
        if code == "451" {
            Event::Deferred {
                queue_id,
                stage,
                reason,
            }
        } else {
            Event::Rejected {
                queue_id,
                stage,
                reason,
            }
        }
    };
    if !auditor.record(event(code, &text)) && code != "451" {
        // A rejection is final: unlogged, it would be processing without a trail
        // (NEN 7513). Deferred, the client keeps the message and tries again.
        let Some((c, e, t)) = audit_unwritable().refusal() else {
            return Status::Tempfail;
        };
        (code, enhanced, text) = (c, e, t);
        tracing::warn!(queue_id, code, reason = %text, "milter: deferring instead of rejecting");
        auditor.record(event(code, &text));
    }
    // A refused text (impossible for sanitized ASCII) still leaves a bare refusal, which
    // keeps the message all the same.
    let _ = cx
        .reply
        .set_error_reply(code, Some(enhanced), [text.as_str()]);
    if code == "451" {
        Status::Tempfail
    } else {
        Status::Reject
    }
}

async fn eom(cx: &mut EomContext<Conn>) -> Status {
    let queue_id = cx
        .macros
        .get(c"i")
        .map(|v| v.to_string_lossy().into_owned());
    let Some(conn) = cx.data.as_mut() else {
        // No state means a protocol sequence we did not follow: defer, the MTA retries.
        let _ = cx.reply.set_error_reply(
            "451",
            Some("4.3.0"),
            ["NTA 7516: internal error: no connection state"],
        );
        return Status::Tempfail;
    };
    let mut msg = Arc::new(std::mem::take(&mut conn.msg));
    let qid = queue_id
        .or(msg.queue_id.clone())
        .unwrap_or_else(|| "?".into());
    let g = conn.generation.clone();
    let leading_space = conn.leading_space;
    let answer = decide(conn, &g, &mut msg, &qid).await;
    // What the metrics count is read now, while the message is still here.
    let tally = tally::Tally::of(conn, &g, &msg, &answer);
    // The received body is not needed once the decision (and any replacement body) exists;
    // held while the replacement goes back to the MTA it would be one more copy of every
    // large message in flight. Its share of the body budget stays taken until the answer
    // is sent: the replacement (about as large) is what it covers now. The planning task's
    // reference is gone by now, so the message is ours alone (else it is kept, as before).
    let (_budget, _shared) = match Arc::try_unwrap(msg) {
        Ok(mut msg) => (msg.body_bytes.take(), None),
        Err(shared) => (None, Some(shared)),
    };
    let status = respond(cx, &answer, &qid, &g, leading_space).await;
    tally.count(&g, &status);
    status
}

/// The one place where a decision becomes the MTA's answer. With `[server] dry_run`
/// nothing is refused and nothing is changed: a refusal is logged and audited as
/// `would_refuse`, and the message goes on as it came.
async fn respond(
    cx: &mut EomContext<Conn>,
    answer: &Answer,
    qid: &str,
    g: &Generation,
    leading_space: bool,
) -> Status {
    if g.config.server.dry_run {
        if let Some((code, enhanced, text)) = answer.refusal() {
            let reply = format!("{code} {enhanced}");
            tracing::warn!(queue_id = qid, would_reply = %reply, reason = %text, "dry run: would have refused the message; it goes on unchanged");
            g.auditor.record(Event::WouldRefuse {
                queue_id: Some(qid.to_string()),
                stage: Stage::EndOfMessage,
                reply,
                reason: text,
            });
        }
        return Status::Continue;
    }
    let Answer::Apply(plan) = answer else {
        return refuse(cx, answer, qid, &g.auditor);
    };
    if let Err(e) = apply(cx, plan, leading_space).await {
        let failed = Answer::Tempfail("4.3.0", format!("cannot modify the message: {e}"));
        return refuse(cx, &failed, qid, &g.auditor);
    }
    Status::Continue
}

async fn apply(
    cx: &mut EomContext<Conn>,
    plan: &plan::Plan,
    leading_space: bool,
) -> Result<(), String> {
    let err = |e: indymilter::ActionError| e.to_string();
    // With LEADING_SPACE negotiated Postfix writes values verbatim: supply the space
    // that normally follows the colon (libmilter's SMFIP_HDR_LEADSPC contract).
    let v = |s: &str| {
        if leading_space {
            format!(" {s}")
        } else {
            s.to_string()
        }
    };
    for (name, idx) in &plan.delete {
        cx.actions
            .change_header(name.as_str(), *idx, None::<&str>)
            .await
            .map_err(err)?;
    }
    for (name, value) in &plan.add {
        cx.actions
            .add_header(name.as_str(), v(value))
            .await
            .map_err(err)?;
    }
    for (name, idx, value) in &plan.change {
        let value = headers::stored_to_wire(value, leading_space)?;
        cx.actions
            .change_header(name.as_str(), *idx, Some(value))
            .await
            .map_err(err)?;
    }
    if let Some((idx, value)) = &plan.subject {
        let mut stored = b" ".to_vec();
        stored.extend_from_slice(value);
        let value = headers::stored_to_wire(&stored, leading_space)?;
        if *idx == 0 {
            cx.actions.add_header("Subject", value).await.map_err(err)?;
        } else {
            cx.actions
                .change_header("Subject", *idx, Some(value))
                .await
                .map_err(err)?;
        }
    }
    for (name, value) in plan.insert_top.iter().rev() {
        cx.actions
            .insert_header(0, name.as_str(), v(value))
            .await
            .map_err(err)?;
    }
    if let Some(body) = &plan.body {
        cx.actions.replace_body(body).await.map_err(err)?;
    }
    if let Some(sig) = &plan.dkim {
        cx.actions
            .insert_header(0, "DKIM-Signature", v(sig))
            .await
            .map_err(err)?;
    }
    if let Some(reason) = &plan.quarantine {
        cx.actions.quarantine(reason.as_str()).await.map_err(err)?;
    }
    Ok(())
}

async fn abort(cx: &mut Context<Conn>) -> Status {
    if let Some(conn) = cx.data.as_mut() {
        conn.msg = Msg::default();
    }
    Status::Continue
}

/// Serves the milter protocol until `shutdown` becomes true. Commands in progress finish
/// (indymilter's graceful shutdown); idle sessions are aborted.
pub async fn serve(
    listener: Bound,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let budget = BodyBudget::new(budget::BODY_BUFFER_BUDGET);
    serve_with_budget(listener, shared, shutdown, budget).await
}

/// [`serve`] with the caller's bound on message bodies in memory at once instead of
/// [`budget::BODY_BUFFER_BUDGET`] bytes (tests use a small one and watch what it holds).
pub async fn serve_with_budget(
    listener: Bound,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    budget: BodyBudget,
) -> std::io::Result<()> {
    let callbacks = Callbacks::new()
        .on_negotiate({
            let shared = shared.clone();
            move |cx, actions, opts| Box::pin(negotiate(cx, shared.clone(), actions, opts))
        })
        .on_connect(move |cx, host, socket| Box::pin(connect(cx, shared.clone(), host, socket)))
        .on_helo(|cx, name| Box::pin(helo(cx, name)))
        .on_mail(|cx, args| Box::pin(mail(cx, args)))
        .on_rcpt(|cx, args| Box::pin(rcpt(cx, args)))
        .on_header(|cx, name, value| Box::pin(header(cx, name, value)))
        .on_body(move |cx, chunk| {
            let budget = budget.clone();
            Box::pin(async move { body(cx, chunk, &budget).await })
        })
        .on_eom(|cx| Box::pin(eom(cx)))
        .on_abort(|cx| Box::pin(abort(cx)));
    let config = indymilter::Config {
        max_connections: MAX_CONNECTIONS,
        connection_timeout: CONNECTION_TIMEOUT,
        ..Default::default()
    };
    indymilter::run(guard::Listener(listener), callbacks, config, async move {
        crate::shutdown::requested(&mut shutdown).await;
    })
    .await
}
