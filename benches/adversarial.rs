//! The worst inputs an outsider can send to the footer rewrite and the NTA record
//! selection, timed. The unit tests only check what these inputs produce; whether they
//! stay linear is measured here (a super-linear regression shows as seconds instead of
//! milliseconds).
//!
//! Run: `cargo bench --bench adversarial` (optional arg: ROUNDS, default 5; the median
//! of the rounds is printed).

use std::hint::black_box;
use std::time::{Duration, Instant};

use nta7516_milter::config::Config;
use nta7516_milter::message::footer::{Footer, add_footer};
use nta7516_milter::nta::record::select;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Header fields and body of `message` as the milter passes them (LF line ends kept).
fn split(message: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let (head, body) = message.split_once("\n\n").expect("a blank line");
    let headers = head
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(':').expect("a header field");
            (n.to_string(), v.trim_start().to_string())
        })
        .collect();
    (headers, body.as_bytes().to_vec())
}

fn median(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn main() {
    let rounds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    let config = Config::embedded_defaults();
    let footer = Footer {
        text: &config.footer.text,
        html: &config.footer.html,
    };
    let line = "w".repeat(1 << 20);
    let mut parts = String::from("Content-Type: multipart/mixed; boundary=b\n\n");
    for i in 0..10_000 {
        parts.push_str(&format!("--b\nContent-Type: text/plain\n\npart {i}\n"));
    }
    parts.push_str("--b--\n");
    let mut missing = String::from("Content-Type: multipart/mixed; boundary=top\n\n");
    for i in 0..5_000 {
        missing.push_str(&format!(
            "--top\nContent-Type: multipart/mixed; boundary=missing{i}\n\nxx\n"
        ));
    }
    missing.push_str(&"filler line\n".repeat(200_000));
    missing.push_str("--top--\n");
    let huge = "-".repeat(100_000);
    let footer_cases = [
        (
            "footer: one 1 MiB line, 8bit",
            format!("Content-Type: text/plain\n\n{line}\n"),
        ),
        (
            "footer: one 1 MiB line, quoted-printable",
            format!(
                "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n{line}\n"
            ),
        ),
        ("footer: 10,000 parts", parts),
        ("footer: 5,000 missing boundaries, 2.4 MB", missing),
        (
            "footer: 100 kB boundary over 1 MiB of dashes",
            format!(
                "Content-Type: multipart/mixed; boundary=\"{huge}x\"\n\n{}\n",
                "-".repeat(1 << 20)
            ),
        ),
    ];
    println!("median of {rounds} rounds");
    for (name, message) in &footer_cases {
        let (headers, body) = split(message);
        let t = median(rounds, || {
            black_box(add_footer(&headers, &body, &footer));
        });
        println!("{name:<48} {:>9.2} ms", t.as_secs_f64() * 1e3);
    }
    let valid = "v=NTA7516-1;startdate=2020-01;enddate=2099-12;provider=Bench";
    let mut flood: Vec<String> = (0..1_000)
        .map(|i| format!("verification-{i}={}", "x".repeat(200)))
        .collect();
    flood.push(valid.to_string());
    flood.extend((0..100_000).map(|i| format!("v=NTA7516-1;n={i}")));
    let same: Vec<String> = (0..1_000).map(|i| format!("{valid};note={i}")).collect();
    for (name, txts) in [
        ("nta select: 101,001 TXT records", &flood),
        ("nta select: 1,000 equal candidates", &same),
    ] {
        let t = median(rounds, || {
            black_box(select(txts));
        });
        println!("{name:<48} {:>9.2} ms", t.as_secs_f64() * 1e3);
    }
}
