//! Header hygiene: the Exim filter's whole-message rewrite (`message::rewrite`: strip our
//! own and the bypass header, add the classification, the footer for `secure`) and the
//! milter's per-field checks (`is_own_header`, forged Authentication-Results, the From
//! domain). The first input byte picks the classification.

use nta7516_milter::config::{Classification, Config};
use nta7516_milter::message::inbound::claims_authserv_id;
use nta7516_milter::message::rewrite::{parse, rewrite};
use nta7516_milter::message::hygiene::is_own_header;
use nta7516_milter::message::plan::from_domain;
use nta7516_milter_fuzz::headers_and_body;

fn main() {
    let config = Config::embedded_defaults();
    let bypass = config.policy.bypass_header.clone();
    afl::fuzz!(|data: &[u8]| {
        let Some((&first, raw)) = data.split_first() else {
            return;
        };
        let class = if first & 1 == 0 {
            Classification::Secure
        } else {
            Classification::Standard
        };
        if let Ok(out) = rewrite(raw, class, &config) {
            // What leaves is a message again, without any field of ours but the one added.
            let again = parse(&out.message).expect("rewritten message does not parse");
            let own: Vec<_> = again
                .fields
                .iter()
                .filter(|f| is_own_header(f.name, &bypass))
                .collect();
            assert_eq!(own.len(), 1, "{own:?}");
        }
        let (headers, _) = headers_and_body(raw);
        for (name, value) in &headers {
            let _ = is_own_header(name, &bypass);
            let _ = claims_authserv_id(value, "mx.zorg.example");
        }
        let _ = from_domain(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    });
}
