//! The scrape: the counters of [`Metrics`] and the state of the current generation as
//! Prometheus text (format 0.0.4, prometheus-client's encoder).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::{
    CLASSIFICATIONS, DIRECTIONS, FrontEnd, LATENCY_BUCKETS, Outcome, REASONS, VERDICTS,
    verdict_index,
};
use crate::state::Generation;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Everything `/metrics` shows, read from `g` (and its process-wide counters) now.
pub fn render(g: Arc<Generation>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(g)));
    let mut text = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug, shown as such.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        text = format!("# encoding failed: {e}\n");
    }
    text
}

struct Scrape(Arc<Generation>);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape")
            .field("generation", &self.0.number)
            .finish()
    }
}

fn gauge<T: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: T,
) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// `name` without `_total`: the encoder adds it to counters.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let g = &self.0;
        let m = &g.metrics;
        let no_exemplar = None::<&prometheus_client::metrics::exemplar::Exemplar<NoLabelSet, u64>>;

        e.encode_descriptor(
            "nta7516_build",
            "The running build (always 1).",
            None,
            MetricType::Info,
        )?
        .encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;

        let mut up = e.encode_descriptor(
            "nta7516_front_end_up",
            "1 while the front-end serves and accepts connections, 0 when it is down.",
            None,
            MetricType::Gauge,
        )?;
        for f in FrontEnd::ALL {
            let v = u64::from(m.front_end_up(f));
            up.encode_family(&[("front_end", f.as_str())])?
                .encode_gauge(&v)?;
        }

        gauge(
            &mut e,
            "nta7516_config_generation",
            "Configuration generation in force (0 at start, +1 per accepted reload).",
            g.number,
        )?;

        let mut msgs = e.encode_descriptor(
            "nta7516_messages",
            "Messages answered at end of data, by direction, classification and outcome.",
            None,
            MetricType::Counter,
        )?;
        for d in DIRECTIONS {
            for c in CLASSIFICATIONS {
                for o in Outcome::ALL {
                    let labels = [
                        ("direction", d.as_str()),
                        ("classification", c.map_or("none", |c| c.as_str())),
                        ("outcome", o.as_str()),
                    ];
                    msgs.encode_family(&labels)?
                        .encode_counter(&m.message_count(d, c, o), no_exemplar)?;
                }
            }
        }

        let mut routes = e.encode_descriptor(
            "nta7516_route_answers",
            "Socketmap route answers by verdict and (first) reason.",
            None,
            MetricType::Counter,
        )?;
        for v in VERDICTS {
            let reasons = REASONS.iter().map(|c| Some(*c)).chain([None]);
            for r in reasons {
                let n = m.route_count(v, r);
                // A compliant verdict has no reason, and the others always have one:
                // leave out the combinations that cannot occur.
                if (v == super::RouteVerdict::Compliant) != r.is_none() && n == 0 {
                    continue;
                }
                let labels = [
                    ("verdict", v.as_str()),
                    ("reason", r.map_or("none", |c| c.as_str())),
                ];
                routes
                    .encode_family(&labels)?
                    .encode_counter(&n, no_exemplar)?;
            }
        }

        let mut evals = e.encode_descriptor(
            "nta7516_dns_evaluations",
            "DNS evaluations of a recipient domain (verdict-cache misses), by verdict.",
            None,
            MetricType::Counter,
        )?;
        for v in VERDICTS {
            let n = m.evaluations[verdict_index(v)].load(Ordering::Relaxed);
            evals
                .encode_family(&[("verdict", v.as_str())])?
                .encode_counter(&n, no_exemplar)?;
        }

        let h = &m.latency;
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(h.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        e.encode_descriptor(
            "nta7516_dns_evaluation_duration_seconds",
            "How long one DNS evaluation of a domain took.",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;

        gauge(
            &mut e,
            "nta7516_verdict_cache_entries",
            "Domains in the verdict cache.",
            g.engine.cache_len() as u64,
        )?;
        let (hits, misses) = (
            m.cache_hits.load(Ordering::Relaxed),
            m.cache_misses.load(Ordering::Relaxed),
        );
        let mut lookups = e.encode_descriptor(
            "nta7516_verdict_cache_lookups",
            "Verdict-cache lookups of a route, tls or inbound decision, by result.",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [("hit", hits), ("miss", misses)] {
            lookups
                .encode_family(&[("result", result)])?
                .encode_counter(&n, no_exemplar)?;
        }
        let total = hits + misses;
        gauge(
            &mut e,
            "nta7516_verdict_cache_hit_ratio",
            "Share of verdict-cache lookups answered from the cache since start (0 before the first).",
            if total == 0 {
                0.0
            } else {
                hits as f64 / total as f64
            },
        )?;

        counter(
            &mut e,
            "nta7516_audit_writes",
            "Audit events written to the audit file (since it was opened).",
            g.auditor.writes(),
        )?;
        counter(
            &mut e,
            "nta7516_audit_failures",
            "Audit events that could not be written to the audit file (kept in the journal only).",
            g.auditor.failures(),
        )?;
        gauge(
            &mut e,
            "nta7516_audit_healthy",
            "1 while the last audit write succeeded, 0 while the audit log cannot be written (mail is deferred).",
            u64::from(g.auditor.healthy()),
        )?;
        gauge(
            &mut e,
            "nta7516_healthy",
            "1 when /healthz answers 200, 0 when it answers 503.",
            u64::from(super::problems(g).is_empty()),
        )
    }
}
