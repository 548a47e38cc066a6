//! Helpers shared by the fuzz targets in `src/bin/`.

/// Splits fuzz input into header fields and body the way a milter hands them over: the
/// header block ends at the first empty line; each line `name: value` is a field, a
/// line starting with white space continues the previous value (LF-only folding, as the
/// milter receives it). Lines without a colon are skipped: the MTA would not pass them.
pub fn headers_and_body(data: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &data[data.len()..]),
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(&line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_string(), value.trim_start().to_string()));
        }
    }
    (fields, body)
}
