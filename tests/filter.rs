//! `nta7516-milter filter` (Exim transport_filter) as Exim runs it: the message on stdin,
//! the result on stdout, the exit status deciding delivery or deferral.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nta7516-milter");
const FOOTER_TEXT: &str = "NTA-FOOTER-TEXT sent securely";
const FOOTER_HTML: &str = "<p class=\"nta\">NTA-FOOTER-HTML sent securely</p>";

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!("[footer]\ntext = \"{FOOTER_TEXT}\"\nhtml = '{FOOTER_HTML}'\n{extra}",),
    )
    .unwrap();
    path
}

/// Runs `filter` with `args` and `input` on stdin; stderr separate from stdout.
fn run_args(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("filter")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: the filter may stop reading early (too large), which must not
    // hang the test; the write error (EPIPE) is expected then.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn run(class: &str, config: &Path, input: &str) -> Output {
    run_args(
        &[
            "--classification",
            class,
            "--config",
            config.to_str().unwrap(),
        ],
        input.as_bytes(),
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SIMPLE: &str = "Received: from client.zkh.nl by mx.zkh.nl\n\twith ESMTP id 1abc\nFrom: Jan <jan@zkh.nl>\nTo: huisarts@ggd.nl\nX-NTA7516-Route: standard\nX-NTA7516-Classification: standard\nx-nta7516-inbound: secure\nX-NTA7516-Bypass: true\nSubject: Uitslag\n\nGeachte collega,\n\nDe uitslag.\n";

#[test]
fn secure_strips_our_headers_adds_classification_and_footer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let o = run("secure", &cfg, SIMPLE);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "Received: from client.zkh.nl by mx.zkh.nl\n\twith ESMTP id 1abc\nFrom: Jan <jan@zkh.nl>\nTo: huisarts@ggd.nl\nSubject: Uitslag\nX-NTA7516-Classification: secure\n\nGeachte collega,\n\nDe uitslag.\n\n{FOOTER_TEXT}\n"
        )
    );
    let err = stderr(&o);
    assert!(
        err.contains("removed 4 client-supplied header field(s)"),
        "{err}"
    );
    assert!(err.contains("footer added to 1 part(s)"), "{err}");
    // Exim passes LF line endings and converts them itself: none may become CRLF.
    assert!(!o.stdout.contains(&b'\r'));
}

#[test]
fn standard_adds_only_the_classification() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let o = run("standard", &cfg, SIMPLE);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("\nX-NTA7516-Classification: standard\n\nGeachte collega,\n\nDe uitslag.\n")
    );
    assert!(
        out.ends_with("De uitslag.\n"),
        "no footer on standard mail: {out}"
    );
    assert_eq!(out.matches("X-NTA7516-").count(), 1, "{out}");
}

#[test]
fn keep_phone_keeps_only_the_number_for_the_portal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let msg = SIMPLE.replace("Subject:", "X-NTA7516-Phone: +31612345678\nSubject:");
    // Without the flag (every SMTP transport) the number goes with the rest.
    let o = run("secure", &cfg, &msg);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("31612345678"));
    let o = run_args(
        &[
            "--classification",
            "secure",
            "--keep-phone",
            "--config",
            cfg.to_str().unwrap(),
        ],
        msg.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "\nX-NTA7516-Phone: +31612345678\nSubject: Uitslag\nX-NTA7516-Classification: secure\n"
        ),
        "{out}"
    );
    assert_eq!(out.matches("X-NTA7516-").count(), 2, "{out}");
    assert!(out.contains(FOOTER_TEXT));
}

#[test]
fn configured_bypass_header_is_removed_too() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[policy]\nbypass_header = \"X-Ezorg-Secbypass\"\n",
    );
    let o = run(
        "standard",
        &cfg,
        "From: a@zkh.nl\nX-EZORG-SECBYPASS: true\nX-Other: kept\n\nx\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "From: a@zkh.nl\nX-Other: kept\nX-NTA7516-Classification: standard\n\nx\n"
    );
}

#[test]
fn multipart_alternative_gets_both_footers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let msg = "From: a@zkh.nl\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nTekst\n--XX\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>Tekst</p></body></html>\n--XX--\n";
    let o = run("secure", &cfg, msg);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("Tekst\n\n{FOOTER_TEXT}\n\n--XX\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("<p>Tekst</p>\n{FOOTER_HTML}\n</body>")),
        "{out}"
    );
    assert!(stderr(&o).contains("footer added to 2 part(s)"));
}

#[test]
fn signed_message_passes_unchanged_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let body = "--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: application/pkcs7-signature\n\nMIIB\n--b--\n";
    let msg = format!(
        "From: a@zkh.nl\nContent-Type: multipart/signed; boundary=\"b\"; protocol=\"application/pkcs7-signature\"\n\n{body}"
    );
    let o = run("secure", &cfg, &msg);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).ends_with(&format!("X-NTA7516-Classification: secure\n\n{body}")));
    assert!(
        stderr(&o).contains("footer skipped: signed message"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn crlf_input_keeps_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let o = run("secure", &cfg, "From: a@zkh.nl\r\nSubject: s\r\n\r\nx\r\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "From: a@zkh.nl\r\nSubject: s\r\nX-NTA7516-Classification: secure\r\n\r\nx\r\n\r\n{FOOTER_TEXT}\r\n"
        )
    );
}

#[test]
fn unparsable_input_fails_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    for input in [
        "this is not a header\n\nbody\n",
        " folded first line: x\n\n",
    ] {
        let o = run("secure", &cfg, input);
        assert_eq!(o.status.code(), Some(75), "{input:?}");
        assert!(o.stdout.is_empty(), "{input:?}: {}", stdout(&o));
        assert!(stderr(&o).contains("not a message"), "{}", stderr(&o));
    }
}

#[test]
fn config_errors_fail_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[footer]\nnope = 1\n").unwrap();
    for cfg in [bad, dir.path().join("missing.toml")] {
        let o = run("secure", &cfg, SIMPLE);
        assert_eq!(o.status.code(), Some(75), "{}", cfg.display());
        assert!(o.stdout.is_empty());
        assert!(stderr(&o).contains("configuration:"), "{}", stderr(&o));
    }
}

#[test]
fn usage_errors_fail() {
    let o = run_args(&["--classification", "sensitive"], SIMPLE.as_bytes());
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let o = run_args(&[], SIMPLE.as_bytes());
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
}

#[test]
fn oversized_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let limit = 64 * 1024 * 1024;
    let mut msg = b"From: a@zkh.nl\n\n".to_vec();
    msg.resize(limit + 1, b'x');
    let o = run_args(
        &[
            "--classification",
            "secure",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &msg,
    );
    assert_eq!(o.status.code(), Some(75));
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).contains("message larger than 67108864 bytes"),
        "{}",
        stderr(&o)
    );
    // exactly at the limit: processed
    msg.truncate(limit);
    let o = run_args(
        &[
            "--classification",
            "standard",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &msg,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        o.stdout.len(),
        limit + "X-NTA7516-Classification: standard\n".len()
    );
}

/// As Exim runs it: stderr is the same pipe as stdout. Notes must not end up in the
/// message; an error message may (Exim discards the output of a failed filter).
#[test]
fn stderr_on_stdout_gets_no_notes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg("exec \"$0\" filter --classification secure --config \"$1\" 2>&1")
        .arg(BIN)
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SIMPLE.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.starts_with("Received: from client.zkh.nl"), "{out}");
    assert!(!out.contains("nta7516-milter filter:"), "{out}");
}

/// Nothing (or only a blank line) on stdin is not a message: inventing one would deliver
/// a message nobody wrote.
#[test]
fn empty_input_fails_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    for input in ["", "\n", "\r\n", "\n\nbody\n"] {
        for class in ["secure", "standard"] {
            let o = run(class, &cfg, input);
            assert_eq!(o.status.code(), Some(75), "{input:?} {class}");
            assert!(o.stdout.is_empty(), "{input:?}: {}", stdout(&o));
            assert!(stderr(&o).contains("not a message"), "{}", stderr(&o));
        }
    }
}

/// The LF message Exim writes gets an LF footer even when its body does not show the
/// line-break style: empty, no final newline, a stray CR.
#[test]
fn lf_message_gets_lf_footer_whatever_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    for (body, new_body) in [
        ("", format!("{FOOTER_TEXT}\n")),
        ("x", format!("x\n\n{FOOTER_TEXT}\n")),
        ("x\r\n", format!("x\r\n\n{FOOTER_TEXT}\n")),
    ] {
        let o = run("secure", &cfg, &format!("From: a@zkh.nl\n\n{body}"));
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            stdout(&o),
            format!("From: a@zkh.nl\nX-NTA7516-Classification: secure\n\n{new_body}"),
            "{body:?}"
        );
    }
}
