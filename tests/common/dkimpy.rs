//! python3-dkim (dkimpy) as the independent DKIM verifier, with its DNS lookup replaced by
//! the one key record under test. Missing python3-dkim FAILS the test: a signature that was
//! never verified must not look like a pass (`apt-get install python3-dkim`).

use std::path::Path;
use std::process::{Command, Stdio};

const VERIFY_PY: &str = r#"
import sys
import dkim
msg = open(sys.argv[1], "rb").read()
txt = open(sys.argv[2], "rb").read()
want = sys.argv[3].encode().lower().rstrip(b".")
def dnsfunc(name, timeout=5):
    return txt if name.lower().rstrip(b".") == want else None
try:
    ok = dkim.DKIM(msg).verify(dnsfunc=dnsfunc)
except dkim.DKIMException as e:
    print("ERROR", e)
    ok = False
print("signature ok" if ok else "signature verification failed")
sys.exit(0 if ok else 1)
"#;

/// Debian's interpreter: python3-dkim lives in /usr/lib/python3/dist-packages.
fn python() -> &'static str {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let ok = Command::new(python)
        .args(["-c", "import dkim, nacl.signing"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3-dkim (with python3-nacl) is missing for {python}: apt-get install python3-dkim"
    );
    python
}

/// Ok(()) when dkimpy verifies `message` against `record` published at `dns_name`;
/// Err(its output) otherwise.
pub fn verify(message: &[u8], dns_name: &str, record: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let (msg, txt) = (dir.path().join("m.eml"), dir.path().join("r.txt"));
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&txt, record).unwrap();
    let out = Command::new(python())
        .args(["-c", VERIFY_PY])
        .arg(&msg)
        .arg(&txt)
        .arg(dns_name)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
