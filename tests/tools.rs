//! The operator tools through the binary: `dkim-keygen`, `nta-record`, and, against the
//! signed DNS test bed, `self-check` and `explain`.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::dnsbed::DnsBed;
use common::keys::ED25519_PEM;
use nta7516_milter::config::Config;
use nta7516_milter::domain::DomainName;
use nta7516_milter::message::dkim::SigningKey;
use nta7516_milter::nta::record::{self, Syntax, YearMonth};

/// The RSA-2048 key published at `rsa._domainkey.selfcheck.test.` (test use only).
const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQD2fK0nIW0nc+E0
vpvMpENRX1fTTMZR7rGUq8M+gFDAoJc4n81eK8f2nL5AzGNobylKa/4Ko9vGaTsh
Zsh2zD003B1ZEa/3D48N/xV/EbljjZhpMD0G7O3tluZ3YRt317K+d13srG4QyUDM
LbHKZj9xbhdprGSsbJ2EDTgsHJOfJjTYi2THQTINiRLOUyCUmhQaRSHhGVexkGHN
u9NgFQdjYzckrgcMyqCkaCFb6Qj/+rCcDcHYQIJdBrpTWnV0uUU/Im93+p0r1a4i
PSft7xOSdu5+HUm1e80RgZ5WRQ5XVHAUuxsgT0UYJUTjvEqb26shTyLuJJjNXDE6
hfuth/2XAgMBAAECggEAU9EKmmNR+Ff9zU9BsIFtCMcomMgjKipGRZ1wy5ibnR0e
vxkMH0k4+qHLSkKWTSV7v3xgiyK0MdCH1HBcm5UQ/SAadLbAhP1L8oD6wNZ4maNF
IAPQxMGdmKy3GwIw8nwtInp5vGjYFqow+B1Tt1U0nrBGkt8V7tIScByErO9cvYF4
IGfRsLqQBvblEeqlrV3+y3xUc8CG+4TysecXaZN+DvIkA9blpRxAjRnFTUqF9OtW
85b0/3M8Oka6GgoafDxx+TAtafrXmAlEjiiV2yWFN8iiUtyCbXVkdERrRbUCtbGX
vtzTVl6Lzf9UbJilS1UAr1NbkNUYhzTzQLcT8aW5KQKBgQD8Xva+BR3lZ8hQnyg3
Eu/WVgysldLmdjGsHQep3fguBzGMI0MJKRFJ0NTtOLp9/nrMlwdEdEjwGcgb4gqE
CRTz310Oo6r6HWs3fRcQfSLR9yhDgcoiTTLz+UZyEOXdSRhqXlJk9e3QFAc5LsKn
wpGfy46haZi4PEIVZUGItKY2iQKBgQD6CA1qipr9AAJuVEZarGJegt+oCcfWk/dr
Vymsal0i2cysFG+n4N1lWpTY81tCmiUgF92VIsM10Y4v4VEV86/Hn2ucEUbk7nuY
f76br3Trgv2LHrVMSx1aNzg1cS/WEuxtdePNJMU+xFC+68ZCruXRRkFQbLVaioaY
W/DJDLOLHwKBgEd6liQnytno1SGQkpFWubtZT+mp3bwMifEXn84K4noW63+nlRsJ
GK5xiX1O7fM1mo5L0HEhBm+KvdS35waSk+6muvKkhI6munFS6q9u4efaOvszzY59
kwrq9XrlMlXEmDe4U1npFdwzcABQMC3Xu+soelNZVzoHRyhML42KrPERAoGBAJwi
PSaD6WcGA36cF9b1gPQd68aGXQltGvsn0fk97m0d7waiOFtwOzDYkMytoxaDJZ3V
6WQA8kAAXTcfD8CSjPkuX0d1Ln01Q28mjoOv3GZZRTUD9xjuayT0CKCuzr1y0btE
+/0V8ipQ809V8lef2hmGMrEjQViJ2qT3/PO/f7rnAoGBAMRXIjzOKXLTiL/6VX6J
CQrlvKFm31AYRERmEQ7fUcm8J/GVHahhUz+r5yL9IOu0VePTL9KbRzKGq6lONqtD
sUf9ZPQllgF6AiUmYxEIbTFmkU66iXlXrT0OqoN6dPHVdnBQNajPsJYFlUolBlcJ
B2x+0bkuSBWeP1HVzuSPWXU+
-----END PRIVATE KEY-----
";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nta7516-milter"))
}

fn run_sync(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// Runs the binary off the runtime that serves the test DNS.
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || bin().args(&args).output().unwrap())
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The character-strings of the zone-file TXT entry in `text` (between `IN TXT` and the
/// first blank line).
fn txt_strings(text: &str) -> Vec<String> {
    let start = text.find(" IN TXT ").expect("a TXT line");
    let entry = &text[start..];
    let entry = &entry[..entry.find("\n\n").unwrap_or(entry.len())];
    entry
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------
// dkim-keygen

fn keygen(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "dkim-keygen",
        "--domain",
        "Zkh.NL",
        "--selector",
        "nta2025",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_sync(&args)
}

#[test]
fn keygen_rsa_and_ed25519() {
    let dir = tempfile::tempdir().unwrap();
    let d = DomainName::parse("zkh.nl").unwrap();
    for (alg, k, file) in [
        (None, "rsa", "rsa.pem"),
        (Some("rsa"), "rsa", "rsa3072.pem"),
        (Some("ed25519"), "ed25519", "ed.pem"),
    ] {
        let path = dir.path().join(file);
        let mut extra = Vec::new();
        if let Some(a) = alg {
            extra.extend(["--algorithm", a]);
        }
        if file == "rsa3072.pem" {
            extra.extend(["--bits", "3072"]);
        }
        let o = keygen(&path, &extra);
        let text = stdout(&o);
        assert_eq!(code(&o), 0, "{text}{}", stderr(&o));
        assert_eq!(mode(&path), 0o600, "{file}");
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");

        // The record: ≤255-byte strings that join to the loaded key's record.
        assert!(
            text.contains("nta2025._domainkey.zkh.nl. IN TXT "),
            "{text}"
        );
        let strings = txt_strings(&text);
        assert!(strings.iter().all(|s| s.len() <= 255), "{strings:?}");
        let joined = strings.concat();
        let key = SigningKey::load(&d, "nta2025", &path).unwrap();
        assert_eq!(joined, key.public_key_dns_record(), "{file}");
        assert!(joined.starts_with(&format!("v=DKIM1; k={k}; p=")));
        let p = joined.split("p=").nth(1).unwrap();
        let raw = data_encoding::BASE64.decode(p.as_bytes()).unwrap();
        match k {
            // RFC 8463 §4.2: the raw 32-byte public key, not a SubjectPublicKeyInfo.
            "ed25519" => {
                assert_eq!(raw.len(), 32);
                assert_eq!(strings.len(), 1);
            }
            _ => {
                assert!(raw.len() > 256, "SubjectPublicKeyInfo");
                assert!(strings.len() >= 2, "an RSA record needs two strings");
                let bits = if file == "rsa3072.pem" { 3072 } else { 2048 };
                assert_eq!(key.rsa_bits(), Some(bits));
            }
        }

        // The config snippet is valid configuration naming the absolute key path.
        let snippet = &text[text.find("[[dkim]]").unwrap()..];
        let snippet = &snippet[..snippet.find("\n\n").unwrap()];
        let c = Config::from_toml_str(snippet, "snippet").unwrap();
        assert_eq!(c.dkim[0].domain, d);
        assert_eq!(c.dkim[0].selector, "nta2025");
        assert_eq!(c.dkim[0].key, path);
    }
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let ed = ["--algorithm", "ed25519"];
    assert_eq!(code(&keygen(&path, &ed)), 0);
    let before = std::fs::read(&path).unwrap();
    let o = keygen(&path, &ed);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("already exists; pass --force"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // --force replaces it, with mode 0600 even when the old file was readable by all.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = keygen(&path, &["--algorithm", "ed25519", "--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_ne!(std::fs::read(&path).unwrap(), before);
    assert_eq!(mode(&path), 0o600);
    // Nothing else left in the directory (no temporary files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn keygen_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.pem");
    let out = out.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--domain", "zkh.nl", "--selector", "s", "--bits", "1024"],
            "2048, 3072 or 4096",
        ),
        (
            vec![
                "--domain",
                "zkh.nl",
                "--selector",
                "s",
                "--algorithm",
                "ed25519",
                "--bits",
                "2048",
            ],
            "RSA keys only",
        ),
        (
            vec!["--domain", "zkh.nl", "--selector", "a b"],
            "--selector",
        ),
        (vec!["--domain", "zkh..nl", "--selector", "s"], "--domain"),
        (
            vec![
                "--domain",
                "zkh.nl",
                "--selector",
                "s",
                "--algorithm",
                "dsa",
            ],
            "invalid value",
        ),
        (vec!["--selector", "s"], "--domain"),
    ] {
        let mut a = vec!["dkim-keygen", "--out", out];
        a.extend(args.iter().copied());
        let o = run_sync(&a);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!Path::new(out).exists(), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------
// nta-record

#[test]
fn nta_record_valid() {
    let o = run_sync(&[
        "nta-record",
        "--provider",
        "Zorgmail",
        "--start",
        "2025-06",
        "--end",
        "2099-05",
        "--ntamx",
        "20 nta2.zkh.nl",
        "--ntamx",
        "10 NTA.zkh.nl.",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let line = text.trim_end();
    assert_eq!(
        line,
        "v=NTA7516-1;startdate=2025-06;enddate=2099-05;provider=Zorgmail;ntamx=10 nta.zkh.nl;ntamx=20 nta2.zkh.nl"
    );
    // The project's parser reads back exactly what was asked for.
    let r = record::parse(line).unwrap();
    assert_eq!(r.syntax, Syntax::Current);
    assert_eq!(r.start, YearMonth::new(2025, 6).unwrap());
    assert_eq!(r.end, YearMonth::new(2099, 5).unwrap());
    assert_eq!(r.provider, "Zorgmail");
    let targets: Vec<String> = r.targets().iter().map(|t| t.to_string()).collect();
    assert_eq!(targets, ["nta.zkh.nl", "nta2.zkh.nl"]);

    // As a zone-file line, and split into ≤255-byte strings when long.
    let mut args = vec![
        "nta-record".to_string(),
        "--provider".into(),
        "Zorgmail".into(),
        "--start".into(),
        "2025-06".into(),
        "--end".into(),
        "2099-05".into(),
        "--domain".into(),
        "ZKH.nl.".into(),
    ];
    let o = bin().args(&args).output().unwrap();
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        "zkh.nl. IN TXT \"v=NTA7516-1;startdate=2025-06;enddate=2099-05;provider=Zorgmail\"\n"
    );
    assert!(stderr(&o).contains("no --ntamx"), "{}", stderr(&o));
    for i in 0..10 {
        args.push("--ntamx".into());
        args.push(format!("{} relay-{i}.{}.zkh.nl", i * 10, "x".repeat(30)));
    }
    let o = bin().args(&args).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let strings = txt_strings(&stdout(&o));
    assert!(strings.len() >= 2 && strings.iter().all(|s| s.len() <= 255));
    let r = record::parse(&strings.concat()).unwrap();
    assert_eq!(r.ntamx.len(), 10);
}

#[test]
fn nta_record_refuses_invalid_input() {
    let eleven: Vec<String> = (0..11).map(|i| format!("{i} h{i}.zkh.nl")).collect();
    let mut too_many = vec!["--provider", "P", "--start", "2025-06", "--end", "2027-05"];
    for h in &eleven {
        too_many.extend(["--ntamx", h.as_str()]);
    }
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--provider", "P", "--start", "2025-13", "--end", "2027-05"],
            "--start",
        ),
        (
            vec!["--provider", "P", "--start", "2025/06", "--end", "2027-05"],
            "--start",
        ),
        (
            vec!["--provider", "P", "--start", "2025-06", "--end", "june"],
            "--end",
        ),
        (
            vec!["--provider", "P", "--start", "2025-06", "--end", "2025-05"],
            "before --start",
        ),
        (
            vec![
                "--provider",
                "A;ntamx=10 evil.test",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
            ],
            "';'",
        ),
        (
            vec![
                "--provider",
                "A\u{7}B",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
            ],
            "control",
        ),
        (
            vec!["--provider", " ", "--start", "2025-06", "--end", "2027-05"],
            "empty",
        ),
        (
            vec![
                "--provider",
                "P",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
                "--ntamx",
                "nta.zkh.nl",
            ],
            "preference is required",
        ),
        (
            vec![
                "--provider",
                "P",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
                "--ntamx",
                "10 nta..zkh.nl",
            ],
            "invalid host name",
        ),
        (
            vec![
                "--provider",
                "P",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
                "--ntamx",
                "10 192.0.2.7",
            ],
            "not a host name",
        ),
        (
            vec![
                "--provider",
                "P",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
                "--ntamx",
                "99999 a.nl",
            ],
            "invalid preference",
        ),
        (
            vec![
                "--provider",
                "P",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
                "--ntamx",
                "10 a.nl",
                "--ntamx",
                "20 A.NL",
            ],
            "twice",
        ),
        (
            vec![
                "--provider",
                "P",
                "--start",
                "2025-06",
                "--end",
                "2027-05",
                "--domain",
                "zkh..nl",
            ],
            "--domain",
        ),
        (too_many, "at most 10"),
        (vec!["--provider", "P", "--start", "2025-06"], "--end"),
    ];
    for (args, want) in cases {
        let mut a = vec!["nta-record"];
        a.extend(args.iter().copied());
        let o = run_sync(&a);
        assert_eq!(code(&o), 2, "{args:?}: {}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

// ---------------------------------------------------------------------------------------
// self-check

struct Keys {
    _dir: tempfile::TempDir,
    ed: PathBuf,
    rsa: PathBuf,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let ed = dir.path().join("ed.pem");
    let rsa = dir.path().join("rsa.pem");
    for (p, pem) in [(&ed, ED25519_PEM), (&rsa, RSA_PEM)] {
        std::fs::write(p, pem).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Keys { _dir: dir, ed, rsa }
}

fn dkim_entry(domain: &str, selector: &str, key: &Path) -> String {
    format!(
        "[[dkim]]\ndomain = \"{domain}\"\nselector = \"{selector}\"\nkey = \"{}\"\n",
        key.display()
    )
}

fn write_config(dir: &Path, name: &str, bed: &DnsBed, own: &[&str], extra: &str) -> PathBuf {
    let own: Vec<String> = own.iter().map(|d| format!("\"{d}\"")).collect();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "{}\n[domains]\nown = [{}]\n{extra}",
            bed.config_toml(),
            own.join(", ")
        ),
    )
    .unwrap();
    path
}

async fn self_check(cfg: &Path, json: bool) -> (i32, String, String) {
    let mut args = vec![
        "self-check".to_string(),
        // The test bed's MX names exist only in its DNS; the probe has its own tests.
        "--no-starttls".into(),
        "--config".into(),
        cfg.display().to_string(),
    ];
    if json {
        args.push("--json".into());
    }
    let o = run(args).await;
    (code(&o), stdout(&o), stderr(&o))
}

fn checks(domain: &serde_json::Value) -> Vec<(String, String)> {
    domain["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn self_check_passing_and_expiring_domains() {
    let bed = DnsBed::start().await;
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}{}",
        dkim_entry("selfcheck.test", "rsa", &k.rsa),
        dkim_entry("expiring.test", "ed", &k.ed)
    );

    // Every check passes.
    let cfg = write_config(
        dir.path(),
        "pass.toml",
        &bed,
        &["selfcheck.test"],
        &dkim_entry("selfcheck.test", "rsa", &k.rsa),
    );
    let (code, out, err) = self_check(&cfg, true).await;
    assert_eq!(code, 0, "{out}{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["version"], 1);
    assert_eq!(j["result"], "pass");
    let d = &j["domains"][0];
    assert_eq!(d["domain"], "selfcheck.test");
    let ids: Vec<String> = checks(d).iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        ids,
        [
            "dnssec",
            "nta_record",
            "nta_validity",
            "targets",
            "dane",
            "dkim",
            "spf",
            "dmarc"
        ]
    );
    assert!(checks(d).iter().all(|(_, r)| r == "pass"), "{d:#}");
    assert_eq!(d["dkim"][0]["name"], "rsa._domainkey.selfcheck.test");
    assert_eq!(d["dkim"][0]["dnssec"], "secure");
    assert_eq!(d["peer_view"]["verdict"], "compliant");
    assert_eq!(d["dane"][0]["host"], "mx.selfcheck.test");

    // Two domains, one expiring within 30 days: a warning, still exit 0.
    let cfg = write_config(
        dir.path(),
        "two.toml",
        &bed,
        &["selfcheck.test", "expiring.test"],
        &extra,
    );
    let (code, out, err) = self_check(&cfg, false).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("selfcheck.test — self-check: PASS"), "{out}");
    assert!(out.contains("expiring.test — self-check: WARN"), "{out}");
    let warn = out
        .lines()
        .find(|l| l.contains("[WARN]"))
        .expect("a warning line");
    assert!(
        warn.contains("NTA 7516 record valid") && warn.contains("expires in"),
        "{warn}"
    );
    assert!(!out.contains("[FAIL]"), "{out}");
    assert!(
        out.contains("Self-check: WARN (2 domain(s): 1 pass, 1 warn, 0 fail, 0 temporary)"),
        "{out}"
    );
    let (_, out, _) = self_check(&cfg, true).await;
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["result"], "warn");
    let e = &j["domains"][1];
    assert_eq!(e["domain"], "expiring.test");
    assert!(checks(e).contains(&("nta_validity".into(), "warn".into())));
    assert!(checks(e).contains(&("dkim".into(), "pass".into())), "{e:#}");
    assert!(e["peer_view"]["nta_record"]["days_left"].as_i64().unwrap() <= 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn self_check_failures() {
    let bed = DnsBed::start().await;
    let k = keys();
    let dir = tempfile::tempdir().unwrap();

    // The published key is not the configured one.
    let cfg = write_config(
        dir.path(),
        "w.toml",
        &bed,
        &["wrongdkim.test"],
        &dkim_entry("wrongdkim.test", "ed", &k.ed),
    );
    let (code, out, err) = self_check(&cfg, false).await;
    assert_eq!(code, 1, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("[FAIL]"))
        .expect("a failure");
    assert!(
        line.contains("DKIM key in DNS matches the configured key"),
        "{line}"
    );
    assert!(
        line.contains("ed._domainkey.wrongdkim.test: the published key is not the public half of"),
        "{line}"
    );
    assert_eq!(out.matches("[FAIL]").count(), 1, "{out}");

    // The right name, the wrong key type: an RSA file where DNS has Ed25519.
    let cfg = write_config(
        dir.path(),
        "k.toml",
        &bed,
        &["selfcheck.test"],
        &dkim_entry("selfcheck.test", "ed", &k.rsa),
    );
    let (code, out, _) = self_check(&cfg, false).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("published k=ed25519 but"), "{out}");

    // A missing key file; a domain without [[dkim]], weak SPF and no DMARC; and DANE on
    // only some hosts (ntamx.test: nta has TLSA, nta2 and the MX do not).
    let missing = dir.path().join("missing.pem");
    let cfg = write_config(
        dir.path(),
        "f.toml",
        &bed,
        &["selfcheck.test", "nodmarc.test", "ntamx.test"],
        &dkim_entry("selfcheck.test", "rsa", &missing),
    );
    let (code, out, err) = self_check(&cfg, true).await;
    assert_eq!(code, 1, "{out}{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["result"], "fail");
    let [s, n, x] = [&j["domains"][0], &j["domains"][1], &j["domains"][2]];
    assert!(checks(s).contains(&("dkim".into(), "fail".into())));
    assert!(
        s["dkim"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "{s:#}"
    );
    assert_eq!(s["dkim"][0]["expected"], serde_json::Value::Null);
    let nc = checks(n);
    for id in ["dkim", "spf", "dmarc"] {
        assert!(nc.contains(&(id.into(), "fail".into())), "{id}: {n:#}");
    }
    assert!(nc.contains(&("nta_record".into(), "pass".into())));
    assert_eq!(x["peer_view"]["verdict"], "compliant");
    assert!(checks(x).contains(&("dane".into(), "warn".into())), "{x:#}");
    let roles: Vec<(&str, &str, &str)> = x["dane"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap(),
                h["role"].as_str().unwrap(),
                h["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("nta.ntamx.test", "ntamx", "pass"),
            ("nta2.ntamx.test", "ntamx", "fail"),
            ("mx.ntamx.test", "mx", "fail")
        ]
    );

    // Expired and insecure domains as own domains.
    let cfg = write_config(
        dir.path(),
        "e.toml",
        &bed,
        &["expired.test", "insecure.test"],
        "",
    );
    let (code, out, _) = self_check(&cfg, true).await;
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(checks(&j["domains"][0]).contains(&("nta_validity".into(), "fail".into())));
    assert!(checks(&j["domains"][1]).contains(&("dnssec".into(), "fail".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn self_check_temporary_and_usage_errors() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();

    // SERVFAIL: temporary, and it outranks a failure elsewhere.
    let cfg = write_config(
        dir.path(),
        "s.toml",
        &bed,
        &["servfail.test", "nodmarc.test"],
        "",
    );
    let (code, out, _) = self_check(&cfg, false).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("servfail.test — self-check: TEMPORARY FAILURE"),
        "{out}"
    );
    assert!(out.contains("[TEMP]"));

    // No own domains: a usage error that says what to do.
    let cfg = dir.path().join("none.toml");
    std::fs::write(&cfg, bed.config_toml()).unwrap();
    let (code, out, err) = self_check(&cfg, false).await;
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("no own domains configured") && err.contains("[domains] own"),
        "{err}"
    );

    // A broken configuration file.
    std::fs::write(&cfg, "[domains]\nown = 1\n").unwrap();
    let (code, _, err) = self_check(&cfg, false).await;
    assert_eq!(code, 2);
    assert!(err.contains("domains.own"), "{err}");
}

// ---------------------------------------------------------------------------------------
// explain

async fn explain(cfg: &Path, address: &str) -> (i32, String) {
    let o = run(vec![
        "explain".into(),
        "--config".into(),
        cfg.display().to_string(),
        address.into(),
    ])
    .await;
    (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
}

/// The map answer line for `query` (`    QUERY  ->  REPLY`).
fn answer_line<'a>(out: &'a str, query: &str) -> &'a str {
    out.lines()
        .find_map(|l| {
            let (q, r) = l.split_once("  ->  ")?;
            (q.trim() == query).then_some(r)
        })
        .unwrap_or_else(|| panic!("no answer for {query:?} in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_compliant_routes() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "c.toml", &bed, &["zkh.test"], "");

    let (code, out) = explain(&cfg, "Jan@Compliant.test").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("Jan@Compliant.test — route: OK nta-dane:compliant.test\n"),
        "{out}"
    );
    assert_eq!(
        answer_line(&out, "route Jan@Compliant.test"),
        "OK nta-dane:compliant.test"
    );
    assert_eq!(answer_line(&out, "tls compliant.test"), "OK dane-only");
    assert!(out.contains("Verdict: compliant"));
    assert!(
        out.contains("evidence txt=secure mx=secure tlsa[mx.compliant.test]=secure/1usable"),
        "{out}"
    );
    assert!(out.contains("[policy] non_compliant does not apply"));
    assert!(out.contains("[PASS] NTA 7516 record valid today"), "{out}");

    let (code, out) = explain(&cfg, "a@ntamx.test").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        answer_line(&out, "route a@ntamx.test"),
        "OK nta-dane:[nta.ntamx.test]:25"
    );
    // Postfix asks the tls map for the bracketed next hop: dane-only from the verdict.
    assert_eq!(answer_line(&out, "tls [nta.ntamx.test]:25"), "OK dane-only");
    assert_eq!(answer_line(&out, "tls ntamx.test"), "OK dane-only");
    assert!(out.contains("ntamx hosts of the DNSSEC-signed NTA record"));
}

/// `explain --json`: the same answers and verdict as the text, as one document.
#[tokio::test(flavor = "multi_thread")]
async fn explain_json_carries_answers_verdict_and_evidence() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "j.toml", &bed, &["zkh.test"], "");
    let json = |address: &'static str| {
        let cfg = cfg.clone();
        async move {
            let o = run(vec![
                "explain".into(),
                "--json".into(),
                "--config".into(),
                cfg.display().to_string(),
                address.into(),
            ])
            .await;
            let v: serde_json::Value =
                serde_json::from_str(&stdout(&o)).expect("one JSON document");
            (code(&o), v)
        }
    };

    let (c, v) = json("Jan@Compliant.test").await;
    assert_eq!(c, 0);
    assert_eq!(v["version"], 1);
    assert_eq!(v["subject"]["kind"], "recipient");
    assert_eq!(v["route"]["query"], "route Jan@Compliant.test");
    assert_eq!(v["route"]["reply"], "OK nta-dane:compliant.test");
    assert!(
        v["tls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["query"] == "tls compliant.test" && a["reply"] == "OK dane-only")
    );
    assert_eq!(v["verdict"], "compliant");
    assert_eq!(v["reasons"], serde_json::json!([]));
    assert_eq!(v["evidence"]["domain"], "compliant.test");
    assert_eq!(v["temporary"], false);

    let (c, v) = json("a@expired.test").await;
    assert_eq!(c, 0);
    assert_eq!(v["verdict"], "not_compliant");
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "nta_record_expired"),
        "{v}"
    );
    assert!(
        v["route"]["reply"]
            .as_str()
            .unwrap()
            .starts_with("OK nta-bounce:5.7.1 "),
        "{v}"
    );

    let (c, v) = json("postmaster@zkh.test").await;
    assert_eq!(c, 0);
    assert_eq!(v["subject"]["kind"], "own_domain");
    assert_eq!(v["verdict"], serde_json::Value::Null);

    let (c, v) = json("x@[192.0.2.1]").await;
    assert_eq!(c, 0);
    assert_eq!(v["subject"]["kind"], "decided_without_dns");
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "address_literal"),
        "{v}"
    );

    let (c, v) = json("a@servfail.test").await;
    assert_eq!((c, &v["temporary"]), (2, &serde_json::json!(true)), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_not_compliant_under_each_setting() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        (
            "",
            "OK nta-bounce:5.7.1 NTA 7516: expired.test cannot receive secure mail directly",
            "non_compliant = \"bounce\"",
        ),
        (
            "[policy]\nnon_compliant = \"defer\"\n",
            "OK nta-defer:4.7.1 NTA 7516: expired.test cannot receive secure mail directly; held",
            "non_compliant = \"defer\"",
        ),
        (
            "[policy]\nnon_compliant = \"fallback\"\nfallback_relay = \"[relay.compliant.test]:25\"\n",
            "OK nta-fallback:[relay.compliant.test]:25",
            "fallback_relay = \"[relay.compliant.test]:25\"",
        ),
    ];
    for (i, (extra, reply, setting)) in settings.iter().enumerate() {
        let cfg = write_config(
            dir.path(),
            &format!("n{i}.toml"),
            &bed,
            &["zkh.test"],
            extra,
        );
        let (code, out) = explain(&cfg, "a@expired.test").await;
        assert_eq!(code, 0, "{out}");
        let route = answer_line(&out, "route a@expired.test");
        assert!(route.starts_with(reply), "{route}");
        assert!(out.contains("Verdict: not compliant"));
        assert!(out.contains("[nta_record_expired]"), "{out}");
        assert!(out.contains(setting), "{setting}: {out}");
        assert!(
            out.contains(&cfg.display().to_string()),
            "names the file: {out}"
        );
        assert_eq!(answer_line(&out, "tls expired.test"), "NOTFOUND ");
        if i < 2 {
            assert!(out.contains("error transport"), "{out}");
        } else {
            // The relay is an ordinary next hop: no NTA record, so no dane-only.
            assert_eq!(
                answer_line(&out, "tls [relay.compliant.test]:25"),
                "NOTFOUND "
            );
        }
    }

    // require_dmarc / require_spf name themselves when they decide.
    let cfg = write_config(
        dir.path(),
        "r.toml",
        &bed,
        &["zkh.test"],
        "[policy]\nrequire_dmarc = true\nrequire_spf = true\n",
    );
    let (code, out) = explain(&cfg, "a@nodmarc.test").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[dmarc_policy_weak]") && out.contains("[spf_policy_weak]"),
        "{out}"
    );
    assert!(
        out.contains("require_dmarc = true") && out.contains("require_spf = true"),
        "{out}"
    );

    // Dry run: the same explanation, and a note that the daemon answers NOTFOUND.
    let cfg = write_config(
        dir.path(),
        "d.toml",
        &bed,
        &["zkh.test"],
        "[server]\ndry_run = true\n",
    );
    let (code, out) = explain(&cfg, "a@expired.test").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("dry run: the daemon actually answers NOTFOUND"),
        "{out}"
    );
    assert!(out.contains("dry_run = true"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_temporary_own_and_non_addresses() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "t.toml", &bed, &["zkh.test"], "");

    let (code, out) = explain(&cfg, "a@servfail.test").await;
    assert_eq!(code, 2, "{out}");
    let route = answer_line(&out, "route a@servfail.test");
    assert!(
        route.starts_with("TEMP NTA 7516: cannot decide the route for servfail.test"),
        "{route}"
    );
    assert!(out.contains("[dns_servfail]"), "{out}");
    assert!(out.contains("always answers TEMP"), "{out}");

    // Own domain (and its subdomains): NOTFOUND without any DNS, naming the own entry.
    let (code, out) = explain(&cfg, "jan@afd.zkh.test").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(answer_line(&out, "route jan@afd.zkh.test"), "NOTFOUND ");
    assert_eq!(answer_line(&out, "tls afd.zkh.test"), "NOTFOUND ");
    assert!(out.contains("afd.zkh.test (own domain)"), "{out}");
    assert!(out.contains("[domains] own contains \"zkh.test\""), "{out}");
    assert!(!out.contains("Verdict:"), "{out}");

    // An address literal is never NOTFOUND (it takes the non_compliant route).
    let (_, out) = explain(&cfg, "a@[192.0.2.1]").await;
    assert!(
        answer_line(&out, "route a@[192.0.2.1]").starts_with("OK nta-"),
        "{out}"
    );
    for key in ["postmaster", "*"] {
        let (code, out) = explain(&cfg, key).await;
        assert_eq!(code, 0, "{key}: {out}");
        assert_eq!(answer_line(&out, &format!("route {key}")), "NOTFOUND ");
        assert!(out.contains("not an address with a domain"), "{out}");
    }

    // Usage errors.
    let (code, out) = explain(&cfg, " ").await;
    assert_eq!(code, 2, "{out}");
    let o = run(vec!["explain".into()]).await;
    assert_eq!(o.status.code(), Some(2));
}
