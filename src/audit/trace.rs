//! The same events as structured tracing events (target `nta7516_milter::audit`).
//!
//! With journald and `with_field_prefix(None)` the keys arrive upper-cased: `EVENT`,
//! `EVENT_ID`, `SEQ`, `QUEUE_ID`, `RCPT_DOMAIN`, `ROUTE`, … List fields are joined with
//! commas. `EVENT_ID` (and `SEQ` when the line reached the file) joins a journal entry
//! to its file line. Deferrals, refusals and recoveries go out at WARN, the rest at INFO.

use super::event::Event;

const TARGET: &str = "nta7516_milter::audit";

pub(super) fn emit(event: &Event, id: &str, seq: Option<u64>) {
    match event {
        Event::MessageReceived {
            direction,
            client_address,
            client_name,
            helo,
            tls_version,
            cipher,
            sasl_user,
            queue_id,
            message_id,
            sender,
            recipients,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            direction = direction.as_str(),
            client_address = client_address.as_str(),
            client_name = client_name.as_str(),
            helo = helo.as_str(),
            tls_version = tls_version.as_deref(),
            cipher = cipher.as_deref(),
            sasl_user = sasl_user.as_deref(),
            queue_id = queue_id.as_str(),
            message_id = message_id.as_deref(),
            sender = sender.as_str(),
            recipients = %recipients.join(","),
            "audit: message received"
        ),
        Event::Classified {
            queue_id,
            message_id,
            classification,
            by,
            trusted_client,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_str(),
            message_id = message_id.as_deref(),
            classification = classification.as_str(),
            by = by.as_str(),
            trusted_client,
            "audit: message classified"
        ),
        Event::RecipientRouted {
            queue_id,
            recipient_domain,
            route,
            verdict,
            reasons,
            evidence,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_deref(),
            rcpt_domain = recipient_domain.as_str(),
            route = route.as_str(),
            verdict = verdict.as_str(),
            reasons = %reasons.join(","),
            evidence = evidence.as_str(),
            "audit: recipient routed"
        ),
        Event::FooterAdded { queue_id, parts } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_str(),
            parts,
            "audit: footer added"
        ),
        Event::Quarantined { queue_id, reason } => tracing::warn!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_str(),
            reason = reason.as_str(),
            "audit: message put on hold"
        ),
        Event::FooterSkipped { queue_id, reason } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_str(),
            reason = reason.as_str(),
            "audit: footer skipped"
        ),
        Event::Signed {
            queue_id,
            domain,
            selector,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_str(),
            domain = domain.as_str(),
            selector = selector.as_str(),
            "audit: DKIM signed"
        ),
        Event::InboundVerified {
            queue_id,
            spf,
            dkim,
            dmarc,
            arrived_securely,
            reasons,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_str(),
            spf = spf.as_str(),
            dkim = dkim.as_str(),
            dmarc = dmarc.as_str(),
            arrived_securely,
            reasons = %reasons.join(","),
            "audit: inbound message verified"
        ),
        Event::Deferred {
            queue_id,
            stage,
            reason,
        } => tracing::warn!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_deref(),
            stage = stage.as_str(),
            reason = reason.as_str(),
            "audit: deferred (4xx)"
        ),
        Event::Rejected {
            queue_id,
            stage,
            reason,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_deref(),
            stage = stage.as_str(),
            reason = reason.as_str(),
            "audit: rejected (5xx)"
        ),
        Event::WouldRefuse {
            queue_id,
            stage,
            reply,
            reason,
        } => tracing::warn!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_deref(),
            stage = stage.as_str(),
            reply = reply.as_str(),
            reason = reason.as_str(),
            "audit: dry run, would have refused; went on unchanged"
        ),
        Event::HeadersRemoved {
            queue_id,
            names,
            from_trusted_client,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            queue_id = queue_id.as_str(),
            names = %names.join(","),
            from_trusted_client,
            "audit: headers removed"
        ),
        Event::ConfigLoaded { source, generation } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            source = source.as_str(),
            generation,
            "audit: configuration loaded"
        ),
        Event::ConfigReloaded { source, generation } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            source = source.as_str(),
            generation,
            "audit: configuration reloaded"
        ),
        Event::ConfigRefused { source, error } => tracing::warn!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            source = source.as_str(),
            error = error.as_str(),
            "audit: configuration refused"
        ),
        Event::Startup {
            version,
            milter,
            map,
        } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            version = version.as_str(),
            milter = milter.as_str(),
            map = map.as_str(),
            "audit: startup"
        ),
        Event::Shutdown { reason } => tracing::info!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            reason = reason.as_str(),
            "audit: shutdown"
        ),
        Event::AuditLogRecovered {
            reason,
            lost_events,
            torn_tail,
        } => tracing::warn!(
            target: TARGET,
            event = event.name(),
            event_id = id,
            seq,
            reason = reason.as_str(),
            lost_events,
            torn_tail_bytes = torn_tail.as_ref().map(|t| t.len() as u64),
            "audit: audit log recovered"
        ),
    }
}
