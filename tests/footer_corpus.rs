//! `filter --classification secure` on every message of tests/data/corpus (public MIME
//! test-suite messages, see its README.md), judged by an independent checker written
//! against Python's standard `email` package (tests/corpus/check_footer.py).
//!
//! python3 is required: without it this test fails, it never skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nta7516-milter");
const FOOTER_TEXT: &str = "NTA7516 corpus footer: sent securely.";
const FOOTER_HTML: &str = "<p class=\"nta\">NTA7516 corpus footer (HTML): sent securely.</p>";
/// The corpus is a few hundred messages; more means something went wrong in the walk.
const MAX_MESSAGES: usize = 2000;
/// One filter run takes milliseconds; this catches a hang, not slowness.
const FILTER_DEADLINE: Duration = Duration::from_secs(30);
/// Files and folders in the corpus folder that are not messages.
const NOT_MESSAGES: &[&str] = &["README.md", "expected.tsv", "LICENSES"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus")
}

/// Every file under `dir`, sorted; directories nest at most a few levels.
fn messages(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    assert!(depth < 4, "corpus nested too deep at {}", dir.display());
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if NOT_MESSAGES.iter().any(|n| path.ends_with(n)) {
            continue;
        }
        if path.is_dir() {
            messages(&path, depth + 1, out);
        } else {
            out.push(path);
        }
        assert!(out.len() <= MAX_MESSAGES, "more than {MAX_MESSAGES} files");
    }
}

/// (exit status, stdout, stderr) of `filter` on `input`, stderr separate from stdout.
fn filter(config: &Path, input: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
    let mut child = Command::new(BIN)
        .args(["filter", "--classification", "secure", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(FILTER_DEADLINE) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // Our own child, by its pid.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("filter did not finish within {FILTER_DEADLINE:?}");
        }
    };
    writer.join().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout, out.stderr)
}

/// Several suites store messages in mbox form; an MTA hands a transport filter the
/// message without the mbox "From " line.
fn without_mbox_line(mut raw: Vec<u8>) -> Vec<u8> {
    if raw.starts_with(b"From ") {
        let end = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| i + 1);
        raw.drain(..end);
    }
    raw
}

#[test]
fn corpus_messages_pass_the_independent_checker() {
    let started = Instant::now();
    let corpus = corpus_dir();
    let mut files = Vec::new();
    messages(&corpus, 0, &mut files);
    assert!(files.len() >= 200, "corpus too small: {}", files.len());

    // NTA7516_CORPUS_OUT=DIR keeps every input, output and stderr there for a look.
    let kept = std::env::var_os("NTA7516_CORPUS_OUT").map(PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let work = kept.as_deref().unwrap_or(temp.path());
    std::fs::create_dir_all(work).unwrap();
    let config = work.join("config.toml");
    std::fs::write(
        &config,
        format!("[footer]\ntext = \"{FOOTER_TEXT}\"\nhtml = '{FOOTER_HTML}'\n"),
    )
    .unwrap();
    std::fs::write(work.join("footer.txt"), FOOTER_TEXT).unwrap();
    std::fs::write(work.join("footer.html"), FOOTER_HTML).unwrap();

    let mut manifest = String::new();
    for (i, file) in files.iter().enumerate() {
        let input = without_mbox_line(std::fs::read(file).unwrap());
        let (code, stdout, stderr) = filter(&config, &input);
        let base = work.join(i.to_string());
        std::fs::write(base.with_extension("in"), &input).unwrap();
        std::fs::write(base.with_extension("out"), &stdout).unwrap();
        std::fs::write(base.with_extension("err"), &stderr).unwrap();
        let rel = file.strip_prefix(&corpus).unwrap().display().to_string();
        manifest.push_str(&format!("{i}\t{rel}\t{code}\n"));
    }
    std::fs::write(work.join("manifest.tsv"), manifest).unwrap();

    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/check_footer.py");
    let out = Command::new("python3")
        .arg(&checker)
        .arg(corpus.join("expected.tsv"))
        .arg(work)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is required for the corpus check (apt-get install python3): {e}")
        });
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the checker failed:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{report}(in {:?})", started.elapsed());
    assert!(report.starts_with("corpus: "), "{report}");
}
