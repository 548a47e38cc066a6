//! A milter that does nothing and a socketmap with a constant answer: the floor that
//! `bench/postfix-throughput.sh` measures as its `null` variant.
//!
//! It holds the same conversation with Postfix as nta7516-milter (the same actions,
//! macros and `NOREPLY` stages, headers and body requested, one connection per SMTP
//! session, one event loop) and answers every `route` lookup like the real map server answers for the
//! compliant bench domain, so Postfix does exactly the work it does for nta7516-milter
//! minus the message changes. What Postfix alone spends on "a milter plus a route map"
//! is then measurable: no milter and no map server can cost Postfix less, so
//! `null / bare` bounds what any such design can reach on the machine.
//!
//! Not part of the product: it never changes or refuses mail.
//!
//!     bench_null MILTER_SOCKET MAP_SOCKET 'OK nta-dane:nta.lab.test'
//!
//! Both sockets are unix sockets, created mode 0666 (stale files removed first). Runs
//! until SIGTERM or SIGINT.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bytes::BytesMut;
use indymilter::{Actions, Callbacks, ProtoOpts, Status};
use nta7516_milter::map::netstring;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};

/// The stages nta7516-milter does not answer (see `milter::NOREPLY_STAGES`).
const NOREPLY: ProtoOpts = nta7516_milter::milter::NOREPLY_STAGES;

fn bind(path: &str) -> std::io::Result<UnixListener> {
    let p = Path::new(path);
    if p.exists() {
        std::fs::remove_file(p)?;
    }
    let l = UnixListener::bind(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

/// One socketmap client: every well-formed request gets `reply`.
async fn map_conn(mut s: UnixStream, reply: Vec<u8>) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match netstring::decode(&mut buf, netstring::MAX_QUERY_SIZE) {
            Ok(Some(_)) => {
                if s.write_all(&reply).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(_) => return,
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn callbacks() -> Callbacks<ProtoOpts> {
    let quiet = |noreply: Option<&ProtoOpts>, stage: ProtoOpts| {
        if noreply.is_some_and(|n| n.contains(stage)) {
            Status::Noreply
        } else {
            Status::Continue
        }
    };
    Callbacks::new()
        .on_negotiate(|cx, actions, opts| {
            Box::pin(async move {
                cx.requested_actions =
                    actions & nta7516_milter::milter::REQUIRED_ACTIONS.union(Actions::QUARANTINE);
                cx.requested_opts |= opts & (NOREPLY | ProtoOpts::LEADING_SPACE);
                cx.data = Some(opts & NOREPLY);
                for (stage, list) in nta7516_milter::milter::REQUESTED_MACROS {
                    if let Ok(s) = CString::new(list) {
                        cx.requested_macros.insert(stage, s);
                    }
                }
                Status::Continue
            })
        })
        .on_connect(move |cx, _, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_CONNECT) })
        })
        .on_helo(move |cx, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_HELO) })
        })
        .on_mail(move |cx, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_MAIL) })
        })
        .on_rcpt(move |cx, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_RCPT) })
        })
        .on_header(move |cx, _, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_HEADER) })
        })
        .on_body(move |cx, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_BODY) })
        })
        .on_eom(|_| Box::pin(async { Status::Continue }))
}

// One event loop, like `nta7516-milter serve` (see `cli::run_serve`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [milter, map, reply] = args.as_slice() else {
        eprintln!("usage: bench_null MILTER_SOCKET MAP_SOCKET REPLY");
        std::process::exit(2);
    };
    let milter = bind(milter)?;
    let map = bind(map)?;
    let reply = netstring::encode(reply.as_bytes());
    tokio::spawn(async move {
        while let Ok((s, _)) = map.accept().await {
            tokio::spawn(map_conn(s, reply.clone()));
        }
    });
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    indymilter::run(milter, callbacks(), indymilter::Config::default(), stop).await
}
