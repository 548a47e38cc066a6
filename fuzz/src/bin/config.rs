//! The configuration loader (`Config::from_toml_str`): TOML parsing, then validation of
//! every section. Any input must give a Config or a list of errors, never a panic.

use nta7516_milter::config::Config;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            if let Err(errors) = Config::from_toml_str(text, "fuzz.toml") {
                let _ = errors.to_string();
            }
        }
    });
}
