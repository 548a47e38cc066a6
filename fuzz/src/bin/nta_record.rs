//! The NTA 7516 TXT record parser (`nta::record`): input is one or more TXT record texts,
//! one per line, as DNS returns them joined.

use nta7516_milter::nta::record;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let txts: Vec<String> = text.lines().map(str::to_string).collect();
        for t in &txts {
            let _ = record::is_nta_candidate(t);
            if let Ok(r) = record::parse(t) {
                let _ = r.targets();
                let _ = r.validity(r.first_valid_day());
                let _ = r.validity(r.last_valid_day());
            }
        }
        let _ = record::select(&txts);
        // The whole input as one record too: a record may contain any byte DNS allows.
        let _ = record::parse(&text);
    });
}
