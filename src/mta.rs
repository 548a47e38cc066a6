//! What the MTA is told, below every front-end that tells it: the names of the shipped
//! transports (postfix/master.cf, the Exim routers) and reply text that fits an SMTP
//! reply, a DSN and a log line. The milter, the map server and the portal all use them.

/// Transport names the shipped master.cf defines (fixed names; postfix/master.cf).
pub const TRANSPORT_DANE: &str = "nta-dane";
pub const TRANSPORT_FALLBACK: &str = "nta-fallback";
/// Runs Postfix's error(8) agent: accepted at RCPT, bounced by the queue manager, so a
/// trusted sender's bypass mark (known only at end of data) can still rescue the message.
/// (An `error:` answer would make smtpd reject at RCPT, before the milter sees the mark.)
/// master.cf runs it as `error -n error` with maxproc 1: see TRANSPORT_DEFER.
pub const TRANSPORT_BOUNCE: &str = "nta-bounce";
/// Runs error(8) as `error -n retry` (error(8) defers only under that name). It must
/// have maxproc 1: Postfix then passes `-l` and takes no accept lock; otherwise it shares
/// `pid/unix.retry` with Postfix's own retry service and an idle nta-defer process
/// blocks every ordinary retry for up to max_idle (found on Postfix 3.7.11; postfix/README).
pub const TRANSPORT_DEFER: &str = "nta-defer";
/// Postfix lmtp(8) service to the eDelivery portal (`non_compliant = "portal"`), answered
/// as `nta-portal:<next hop>` with the `[portal] lmtp` socket as the next hop
/// (`map::reply::lmtp_next_hop`). Accepted at RCPT like the other services here, so a trusted sender's
/// bypass mark still sends not-sensitive mail the ordinary way.
pub const TRANSPORT_PORTAL: &str = "nta-portal";
/// Reply text must be one line of printable ASCII: it ends up in SMTP replies, DSNs and
/// Postfix logs. Anything else becomes `?`; long text is cut.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out
}
