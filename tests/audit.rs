//! The audit log: envelope of every event, the hash chain and what `verify_files`
//! catches, rotation, restarts, repair, concurrency, write failures, tracing fields and
//! the `audit verify` command.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use nta7516_milter::audit::{
    Auditor, ChainStart, Classification, Direction, Event, GENESIS, Problem, RouteVerdict, Stage,
    VerifyError, VerifyReport, sha256_hex, state_path, verify_files,
};
use serde_json::Value;

fn all_events() -> Vec<Event> {
    vec![
        Event::MessageReceived {
            direction: Direction::Outbound,
            client_address: "192.0.2.7".into(),
            client_name: "werkplek7.zorg.example".into(),
            helo: "werkplek7".into(),
            tls_version: Some("TLSv1.3".into()),
            cipher: Some("TLS_AES_256_GCM_SHA384".into()),
            sasl_user: Some("j.jansen".into()),
            queue_id: "4ABC123DEF".into(),
            message_id: Some("<1@zorg.example>".into()),
            sender: "j.jansen@zorg.example".into(),
            recipients: vec!["a@ziekenhuis.example".into(), "b@kliniek.example".into()],
        },
        Event::MessageReceived {
            direction: Direction::Inbound,
            client_address: "unknown".into(),
            client_name: "unknown".into(),
            helo: "mx.peer.example".into(),
            tls_version: None,
            cipher: None,
            sasl_user: None,
            queue_id: "5DEF".into(),
            message_id: None,
            sender: "x@peer.example".into(),
            recipients: vec!["y@zorg.example".into()],
        },
        Event::Classified {
            queue_id: "4ABC123DEF".into(),
            message_id: Some("<1@zorg.example>".into()),
            classification: Classification::Secure,
            by: "bypass header (false)".into(),
            trusted_client: true,
        },
        Event::RecipientRouted {
            queue_id: None,
            recipient_domain: "kliniek.example".into(),
            route: "smtp:".into(),
            verdict: RouteVerdict::NotCompliant,
            reasons: vec!["no_nta_record".into(), "no_dane".into()],
            evidence: "txt secure (nxdomain); mx secure".into(),
        },
        Event::RecipientRouted {
            queue_id: Some("4ABC123DEF".into()),
            recipient_domain: "traag.example".into(),
            route: "".into(),
            verdict: RouteVerdict::Temporary,
            reasons: vec!["servfail".into()],
            evidence: "txt servfail".into(),
        },
        Event::FooterAdded {
            queue_id: "4ABC123DEF".into(),
            parts: 2,
        },
        Event::FooterSkipped {
            queue_id: "4ABC123DEF".into(),
            reason: "multipart/signed".into(),
        },
        Event::Signed {
            queue_id: "4ABC123DEF".into(),
            domain: "zorg.example".into(),
            selector: "nta2026".into(),
        },
        Event::InboundVerified {
            queue_id: "5DEF".into(),
            spf: "pass".into(),
            dkim: "pass".into(),
            dmarc: "pass".into(),
            arrived_securely: true,
            reasons: vec![],
        },
        Event::Deferred {
            queue_id: None,
            stage: Stage::RcptTo,
            reason: "451 4.7.5 DNSSEC bogus".into(),
        },
        Event::Rejected {
            queue_id: Some("5DEF".into()),
            stage: Stage::EndOfMessage,
            reason: "550 5.7.1 DMARC reject".into(),
        },
        Event::WouldRefuse {
            queue_id: Some("5DEF".into()),
            stage: Stage::EndOfMessage,
            reply: "550 5.7.1".into(),
            reason: "NTA 7516: DMARC reject".into(),
        },
        Event::HeadersRemoved {
            queue_id: "5DEF".into(),
            names: vec!["X-Ezorg-Secbypass".into()],
            from_trusted_client: false,
        },
        Event::ConfigLoaded {
            source: "/etc/nta7516-milter/config.toml".into(),
            generation: 1,
        },
        Event::ConfigReloaded {
            source: "/etc/nta7516-milter/config.toml".into(),
            generation: 2,
        },
        Event::ConfigRefused {
            source: "/etc/nta7516-milter/config.toml".into(),
            error: "line 3: unknown key".into(),
        },
        Event::Startup {
            version: "0.1.0".into(),
            milter: "inet:127.0.0.1:8891".into(),
            map: "unix:/run/nta7516-milter/map.sock".into(),
        },
        Event::Shutdown {
            reason: "SIGTERM".into(),
        },
    ]
}

fn event(i: usize) -> Event {
    let all = all_events();
    all[i % all.len()].clone()
}

fn write_log(path: &Path, n: usize) {
    let a = Auditor::open(Some(path)).unwrap();
    for i in 0..n {
        a.record(event(i));
    }
    assert!(a.healthy());
    assert_eq!(a.failures(), 0);
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn json_lines(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    fs::write(path, s).unwrap();
}

fn verify(paths: &[&Path]) -> Result<VerifyReport, VerifyError> {
    let v: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    verify_files(&v)
}

/// The first broken link: (file, line, problem).
fn broken(paths: &[&Path]) -> (PathBuf, u64, Problem) {
    match verify(paths) {
        Err(VerifyError::Broken {
            file,
            line,
            problem,
        }) => (file, line, problem),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

fn log(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("audit.log")
}

#[test]
fn every_event_serialises_with_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let events = all_events();
    write_log(&path, events.len());
    let raw = lines(&path);
    let lines = json_lines(&path);
    assert_eq!(lines.len(), events.len());
    let mut boot = None;
    for (i, (v, e)) in lines.iter().zip(&events).enumerate() {
        assert!(raw[i].starts_with("{\"seq\":"), "{}", raw[i]);
        assert_eq!(v["seq"], i as u64 + 1);
        let prev = v["prev"].as_str().unwrap();
        if i == 0 {
            assert_eq!(prev, GENESIS);
        } else {
            assert_eq!(prev, sha256_hex(raw[i - 1].as_bytes()));
        }
        let id = v["event_id"].as_str().unwrap();
        let (b, n) = id.split_once('-').unwrap();
        assert_eq!(b.len(), 16);
        assert_eq!(n, (i + 1).to_string());
        assert_eq!(*boot.get_or_insert(b.to_string()), b);
        let t = v["time"].as_str().unwrap();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.ends_with('Z') && &t[10..11] == "T" && &t[19..20] == ".",
            "{t}"
        );
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(v["event_type"], e.name());
        assert_eq!(v["action"], e.action());
        assert!(["C", "R", "U", "D", "E"].contains(&v["action"].as_str().unwrap()));
        assert!([0, 4, 8, 12].contains(&v["outcome"].as_u64().unwrap()));
        assert!(v["user"]["id"].is_string() && v["user"]["type"].is_string());
        assert!(v["audit_source"]["id"].is_string());
        assert!(
            v["audit_source"]["software"]
                .as_str()
                .unwrap()
                .starts_with("nta7516-milter/")
        );
        assert!(v["objects"].is_array());
        assert!(v["detail"].is_object());
        assert!(v.get("network_access_point").is_some());
        assert_eq!(v["hash"].as_str().unwrap().len(), 64);
        for forbidden in ["subject", "body"] {
            assert!(v["detail"].get(forbidden).is_none());
        }
        // The detail is exactly the event's fields.
        assert_eq!(v["detail"], serde_json::to_value(e).unwrap());
    }
    // message_received: user, access point and objects.
    let m = &lines[0];
    assert_eq!(m["event_type"], "message_received");
    assert_eq!(m["action"], "C");
    assert_eq!(m["outcome"], 0);
    assert_eq!(
        m["user"],
        serde_json::json!({"id": "j.jansen", "type": "sasl_user"})
    );
    assert_eq!(
        m["network_access_point"],
        serde_json::json!({"type_code": 2, "id": "192.0.2.7"})
    );
    assert_eq!(
        m["objects"],
        serde_json::json!([
            {"type": "queue_id", "id": "4ABC123DEF"},
            {"type": "message_id", "id": "<1@zorg.example>"},
            {"type": "sender", "id": "j.jansen@zorg.example"},
            {"type": "recipient", "id": "a@ziekenhuis.example"},
            {"type": "recipient", "id": "b@kliniek.example"},
        ])
    );
    assert_eq!(m["detail"]["direction"], "outbound");
    assert_eq!(m["detail"]["tls_version"], "TLSv1.3");
    // Without SASL the user is the envelope sender; a non-IP client is a host name.
    let m = &lines[1];
    assert_eq!(
        m["user"],
        serde_json::json!({"id": "x@peer.example", "type": "envelope_sender"})
    );
    assert_eq!(m["network_access_point"]["type_code"], 1);
    assert_eq!(m["detail"]["sasl_user"], Value::Null);
    assert_eq!(m["detail"]["direction"], "inbound");
    // Later events: the gateway acting; no access point.
    let c = &lines[2];
    assert_eq!(c["user"]["type"], "system");
    assert_eq!(c["network_access_point"], Value::Null);
    assert_eq!(c["detail"]["classification"], "secure");
    assert_eq!(c["detail"]["by"], "bypass header (false)");
    let r = &lines[3];
    assert_eq!(r["detail"]["verdict"], "not_compliant");
    assert_eq!(r["outcome"], 0);
    assert_eq!(
        r["objects"],
        serde_json::json!([{"type": "recipient_domain", "id": "kliniek.example"}])
    );
    assert_eq!(lines[4]["outcome"], 4);
    let by_type = |t: &str| lines.iter().find(|l| l["event_type"] == t).unwrap();
    assert_eq!(by_type("deferred")["outcome"], 4);
    assert_eq!(by_type("deferred")["detail"]["stage"], "rcpt_to");
    assert_eq!(by_type("rejected")["outcome"], 8);
    assert_eq!(by_type("rejected")["detail"]["stage"], "end_of_message");
    assert_eq!(by_type("footer_skipped")["outcome"], 4);
    assert_eq!(by_type("config_refused")["outcome"], 4);
    assert_eq!(by_type("config_loaded")["action"], "R");
    assert_eq!(by_type("signed")["action"], "U");
    assert_eq!(
        by_type("config_reloaded")["objects"][0]["type"],
        "config_file"
    );
    assert!(verify(&[&path]).is_ok());
}

#[test]
fn a_long_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 1000);
    let r = verify(&[&path]).unwrap();
    assert_eq!(r.lines, 1000);
    assert_eq!(r.files, 1);
    assert_eq!(r.start, ChainStart::Genesis);
    assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(1000)));
    let last = lines(&path).pop().unwrap();
    assert_eq!(r.last_hash, Some(sha256_hex(last.as_bytes())));
    assert!(r.notes.is_empty());
    // The state record next to the log matches.
    let state = fs::read_to_string(state_path(&path)).unwrap();
    assert!(state.contains("seq=00000000000000001000"), "{state}");
    assert!(state.contains(&sha256_hex(last.as_bytes())));
}

#[test]
fn one_altered_byte_anywhere_is_found_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 20);
    let original = fs::read(&path).unwrap();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            original
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    // Every 7th byte of the file (the newlines excepted), including the last line.
    for pos in (0..original.len()).step_by(7).chain([original.len() - 2]) {
        if original[pos] == b'\n' {
            continue;
        }
        let mut bytes = original.clone();
        bytes[pos] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let line = starts.iter().filter(|&&s| s <= pos).count() as u64;
        let (_, at, problem) = broken(&[&path]);
        assert_eq!(at, line, "byte {pos}: {problem}");
    }
    // An altered letter inside a value that stays valid JSON: the seal catches it.
    fs::write(&path, &original).unwrap();
    let mut l = lines(&path);
    assert!(l[7].contains("zorg.example"));
    l[7] = l[7].replacen("zorg.example", "zorh.example", 1);
    write_lines(&path, &l);
    let (_, at, problem) = broken(&[&path]);
    assert_eq!((at, problem), (8, Problem::Altered));
}

#[test]
fn a_modified_prev_is_found_even_when_resealed() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 10);
    let mut l = lines(&path);
    let old = serde_json::from_str::<Value>(&l[6]).unwrap()["prev"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = sha256_hex(b"forged");
    l[6] = l[6].replace(&old, &forged);
    write_lines(&path, &l);
    assert_eq!(broken(&[&path]).1, 7);
    assert_eq!(broken(&[&path]).2, Problem::Altered);
    // Reseal the line as a forger would: now the link itself is wrong.
    let body = &l[6][..l[6].len() - 75];
    l[6] = format!("{body},\"hash\":\"{}\"}}", sha256_hex(body.as_bytes()));
    write_lines(&path, &l);
    let (_, at, problem) = broken(&[&path]);
    assert_eq!(at, 7);
    assert!(
        matches!(&problem, Problem::PrevMismatch { file: None, line: 6, found, .. } if *found == forged),
        "{problem:?}"
    );
    assert!(
        problem
            .to_string()
            .starts_with("prev does not match line 6 (")
    );
}

#[test]
fn a_deleted_line_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 10);
    let orig = lines(&path);
    for k in [1, 4, 8] {
        let mut l = orig.clone();
        l.remove(k);
        write_lines(&path, &l);
        let (file, at, problem) = broken(&[&path]);
        assert_eq!(file, path);
        assert_eq!(at, k as u64 + 1, "{problem}");
        assert!(
            matches!(problem, Problem::PrevMismatch { line, .. } if line == k as u64),
            "{problem:?}"
        );
    }
}

#[test]
fn a_deleted_first_line_leaves_an_unverified_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 10);
    let mut l = lines(&path);
    l.remove(0);
    write_lines(&path, &l);
    let r = verify(&[&path]).unwrap();
    assert!(matches!(r.start, ChainStart::Unverified { seq: 2, .. }));
    assert_eq!(r.notes.len(), 1);
    assert!(
        r.notes[0].contains("chain start not verified"),
        "{:?}",
        r.notes
    );
}

#[test]
fn a_deleted_last_line_is_found_through_the_state_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 10);
    let mut l = lines(&path);
    l.pop();
    write_lines(&path, &l);
    let (_, at, problem) = broken(&[&path]);
    assert_eq!(at, 10);
    assert!(
        matches!(
            problem,
            Problem::TailMissing {
                state_seq: 10,
                last_seq: 9,
                ..
            }
        ),
        "{problem:?}"
    );
    // Without the state record (an archived copy) the shortened chain cannot tell.
    fs::remove_file(state_path(&path)).unwrap();
    assert_eq!(verify(&[&path]).unwrap().lines, 9);
}

#[test]
fn two_swapped_lines_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 10);
    let orig = lines(&path);
    for k in [0, 3, 8] {
        let mut l = orig.clone();
        l.swap(k, k + 1);
        write_lines(&path, &l);
        let (_, at, problem) = broken(&[&path]);
        // Swapping the first two: line 1 is no genesis line, line 2 is the genesis.
        let expected = if k == 0 { 2 } else { k as u64 + 1 };
        assert_eq!(at, expected, "swap {k}: {problem}");
    }
}

#[test]
fn a_truncated_last_line_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 10);
    let bytes = fs::read(&path).unwrap();
    for cut in [1, 40, 200] {
        fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
        let (_, at, problem) = broken(&[&path]);
        assert_eq!((at, problem), (10, Problem::Truncated), "cut {cut}");
    }
}

#[test]
fn rotation_continues_the_chain_in_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let rotated = dir.path().join("audit.log.1");
    let a = Auditor::open(Some(&path)).unwrap();
    for i in 0..5 {
        a.record(event(i));
    }
    fs::rename(&path, &rotated).unwrap();
    // logrotate `create`: a new empty file with the right mode.
    fs::write(&path, "").unwrap();
    for i in 5..12 {
        a.record(event(i));
    }
    drop(a);
    assert_eq!(lines(&rotated).len(), 5);
    assert_eq!(lines(&path).len(), 7);
    let r = verify(&[&rotated, &path]).unwrap();
    assert_eq!((r.lines, r.files, r.last_seq), (12, 2, Some(12)));
    assert_eq!(r.start, ChainStart::Genesis);
    // The new file alone: intact, start not verified (and said so).
    let r = verify(&[&path]).unwrap();
    assert!(matches!(r.start, ChainStart::Unverified { seq: 6, .. }));
    assert!(r.notes[0].contains("chain start not verified"));
    // The rotated file alone: intact from the genesis.
    assert_eq!(verify(&[&rotated]).unwrap().lines, 5);
    // Wrong order.
    let (file, at, problem) = broken(&[&path, &rotated]);
    assert_eq!((file, at), (rotated.clone(), 1));
    assert!(
        matches!(problem, Problem::GenesisInside { .. }),
        "{problem:?}"
    );
    // A line removed at the boundary.
    let mut l = lines(&path);
    l.remove(0);
    write_lines(&path, &l);
    let (file, at, problem) = broken(&[&rotated, &path]);
    assert_eq!((file, at), (path.clone(), 1));
    assert!(
        problem
            .to_string()
            .starts_with("prev does not match the last line of "),
        "{problem}"
    );
}

#[test]
fn rotation_without_create_and_while_the_daemon_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let rotated = dir.path().join("audit.log.1");
    let older = dir.path().join("audit.log.2");
    // No `create`: the writer makes the new file itself.
    let a = Auditor::open(Some(&path)).unwrap();
    a.record(event(0));
    fs::rename(&path, &older).unwrap();
    a.record(event(1));
    drop(a);
    // Rotated while down: the state record links the new file to the old one.
    fs::rename(&path, &rotated).unwrap();
    write_log(&path, 3);
    assert!(verify(&[&older, &rotated, &path]).is_ok());
    assert_eq!(verify(&[&older, &rotated, &path]).unwrap().lines, 5);
    // Again, with the state record lost: the last line of `<file>.1` is used.
    fs::rename(&rotated, &older).unwrap();
    fs::rename(&path, &rotated).unwrap();
    fs::remove_file(state_path(&path)).unwrap();
    write_log(&path, 2);
    let r = verify(&[&rotated, &path]).unwrap();
    assert_eq!((r.lines, r.last_seq), (5, Some(7)));
    // No history at all: a fresh genesis in a new directory.
    let other = tempfile::tempdir().unwrap();
    write_log(&log(&other), 1);
    assert_eq!(verify(&[&log(&other)]).unwrap().start, ChainStart::Genesis);
}

#[test]
fn a_restart_continues_the_chain_with_new_event_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 3);
    write_log(&path, 3);
    let l = json_lines(&path);
    assert_eq!(l.len(), 6);
    assert_eq!(verify(&[&path]).unwrap().last_seq, Some(6));
    let boot = |v: &Value| {
        v["event_id"]
            .as_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .to_string()
    };
    assert_ne!(boot(&l[0]), boot(&l[3]));
    assert!(l[3]["event_id"].as_str().unwrap().ends_with("-1"));
}

#[test]
fn a_torn_tail_is_repaired_and_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    write_log(&path, 3);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":4,\"prev\":\"ab");
    fs::write(&path, &bytes).unwrap();
    assert_eq!(broken(&[&path]).2, Problem::Truncated);
    write_log(&path, 1);
    let l = json_lines(&path);
    assert_eq!(l.len(), 5);
    assert_eq!(l[3]["event_type"], "audit_log_recovered");
    assert_eq!(l[3]["outcome"], 4);
    assert_eq!(l[3]["detail"]["torn_tail"], "{\"seq\":4,\"prev\":\"ab");
    assert_eq!(l[3]["detail"]["lost_events"], 0);
    assert!(
        l[3]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("incomplete last line")
    );
    assert_eq!(l[4]["seq"], 5);
    assert_eq!(verify(&[&path]).unwrap().lines, 5);
}

#[test]
fn eight_threads_keep_one_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let a = Arc::new(Auditor::open(Some(&path)).unwrap());
    std::thread::scope(|s| {
        for t in 0..8 {
            let a = a.clone();
            s.spawn(move || {
                for i in 0..250 {
                    a.record(event(t * 250 + i));
                }
            });
        }
    });
    assert_eq!(a.failures(), 0);
    drop(a);
    let r = verify(&[&path]).unwrap();
    assert_eq!(r.lines, 2000);
    // Event ids are unique and in file order.
    let ids: Vec<u64> = json_lines(&path)
        .iter()
        .map(|v| {
            v["event_id"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_batch_is_consecutive_chained_lines_between_single_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let a = Auditor::open(Some(&path)).unwrap();
    a.record(event(0));
    a.record_all(vec![event(1), event(2), event(3)]);
    a.record_all(Vec::new());
    a.record(event(4));
    assert!(a.healthy());
    drop(a);
    let l = json_lines(&path);
    assert_eq!(l.len(), 5);
    let expected: Vec<Value> = (0..5)
        .map(|i| Value::String(event(i).name().to_string()))
        .collect();
    for (i, line) in l.iter().enumerate() {
        assert_eq!(line["seq"], (i + 1) as u64, "line {i}");
        assert_eq!(line["event_type"], expected[i], "line {i}");
        assert!(
            line["event_id"]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{}", i + 1))
        );
    }
    assert_eq!(verify(&[&path]).unwrap().lines, 5);
}

#[test]
fn a_failed_batch_loses_every_event_in_it_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let a = Auditor::open(Some(&path)).unwrap();
    a.record_all(vec![event(0), event(1), event(2)]);
    assert!(!a.healthy());
    assert_eq!(a.failures(), 3);
    fs::remove_file(&path).unwrap();
    a.record(event(3));
    assert!(a.healthy());
    drop(a);
    let l = json_lines(&path);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0]["event_type"], "audit_log_recovered");
    assert_eq!(l[0]["detail"]["lost_events"], 3);
    assert_eq!(verify(&[&path]).unwrap().lines, 2);
}

#[test]
fn a_write_failure_turns_unhealthy_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    // A file on a full disk.
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let a = Auditor::open(Some(&path)).unwrap();
    assert!(a.healthy());
    a.record(event(0));
    a.record(event(1));
    assert!(!a.healthy());
    assert_eq!(a.failures(), 2);
    // Room again (here: the path points at a real file).
    fs::remove_file(&path).unwrap();
    a.record(event(2));
    assert!(a.healthy());
    assert_eq!(a.failures(), 2);
    drop(a);
    let l = json_lines(&path);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0]["event_type"], "audit_log_recovered");
    assert_eq!(l[0]["detail"]["lost_events"], 2);
    assert!(
        l[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("could not be written")
    );
    // The lost events (and a failed attempt at the recovery line) used ids 1 to 3:
    // the gap is visible.
    assert!(l[0]["event_id"].as_str().unwrap().ends_with("-4"));
    assert!(l[1]["event_id"].as_str().unwrap().ends_with("-5"));
    assert_eq!(verify(&[&path]).unwrap().lines, 2);
}

#[test]
fn tracing_only_and_file_mode() {
    let a = Auditor::open(None).unwrap();
    assert_eq!(a.path(), None);
    a.record(event(0));
    assert!(a.healthy());
    assert!(a.sync().is_ok());

    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let a = Auditor::open(Some(&path)).unwrap();
    assert_eq!(a.path(), Some(path.as_path()));
    use std::os::unix::fs::PermissionsExt;
    for p in [&path, &state_path(&path)] {
        let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "{}: {mode:o}", p.display());
    }
    // A directory that does not exist is an open error naming the file.
    let e = Auditor::open(Some(&dir.path().join("no/such/audit.log"))).unwrap_err();
    assert!(e.to_string().contains("no/such/audit.log"), "{e}");
}

/// Captures the fields of tracing events on the audit target.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Recorded>>>);

/// One tracing event's (field, value) pairs.
type Recorded = Vec<(String, String)>;

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        self.0.push((f.name().to_string(), format!("{v:?}")));
    }
    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        self.0.push((f.name().to_string(), v.to_string()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if e.metadata().target() == "nta7516_milter::audit" {
            let mut f = vec![("level".to_string(), e.metadata().level().to_string())];
            e.record(&mut Fields(&mut f));
            self.0.lock().unwrap().push(f);
        }
    }
}

#[test]
fn events_go_to_tracing_with_journald_ready_fields() {
    use tracing_subscriber::layer::SubscriberExt;
    let cap = Capture::default();
    // Global, not scoped: other tests log from other threads at the same time, and a
    // scoped dispatcher races with their callsite registration. This auditor's events
    // are told apart by its boot id.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(cap.clone()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let a = Auditor::open(Some(&path)).unwrap();
    // all_events() and the two variants it leaves out, so every variant's fields are pinned.
    let extra = [
        Event::Quarantined {
            queue_id: "6F00".into(),
            reason: "policy hold".into(),
        },
        Event::AuditLogRecovered {
            reason: "torn tail".into(),
            lost_events: 3,
            torn_tail: Some("{\"seq\":9".into()),
        },
    ];
    let expected = all_events().len() + extra.len();
    for e in all_events().into_iter().chain(extra) {
        a.record(e);
    }
    let get = |ev: &Recorded, k: &str| ev.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mine = format!("{}-", a.boot_id());
    let got: Vec<Recorded> = cap
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| get(e, "event_id").is_some_and(|id| id.starts_with(&mine)))
        .cloned()
        .collect();
    assert_eq!(got.len(), expected);
    let routed = got
        .iter()
        .find(|e| get(e, "event").as_deref() == Some("recipient_routed"))
        .unwrap();
    assert_eq!(
        get(routed, "rcpt_domain").as_deref(),
        Some("kliniek.example")
    );
    assert_eq!(get(routed, "route").as_deref(), Some("smtp:"));
    assert_eq!(get(routed, "verdict").as_deref(), Some("not_compliant"));
    assert_eq!(
        get(routed, "reasons").as_deref(),
        Some("no_nta_record,no_dane")
    );
    assert_eq!(get(routed, "seq").as_deref(), Some("4"));
    let received = &got[0];
    assert_eq!(get(received, "queue_id").as_deref(), Some("4ABC123DEF"));
    assert_eq!(
        get(received, "client_address").as_deref(),
        Some("192.0.2.7")
    );
    assert_eq!(
        get(received, "recipients").as_deref(),
        Some("a@ziekenhuis.example,b@kliniek.example")
    );
    // Every event carries its id; names are journald-safe (upper-cased by journald).
    for e in got.iter() {
        assert!(get(e, "event_id").is_some());
        for (name, _) in e {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }
    // Absent options are simply not recorded.
    assert_eq!(get(&got[1], "sasl_user"), None);
    // Every event's level, field names, order and values, as journald receives them
    // (the boot-specific event id masked): operators' journal queries depend on these.
    let lines: Vec<String> = got
        .iter()
        .map(|e| {
            e.iter()
                .map(|(k, v)| match k.as_str() {
                    "event_id" => "event_id=<id>".to_string(),
                    _ => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(lines, TRACE_GOLDEN);
}

/// What [`events_go_to_tracing_with_journald_ready_fields`] must see, one event a line.
const TRACE_GOLDEN: &[&str] = &[
    "level=INFO message=audit: message received event=message_received event_id=<id> seq=1 direction=outbound client_address=192.0.2.7 client_name=werkplek7.zorg.example helo=werkplek7 tls_version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 sasl_user=j.jansen queue_id=4ABC123DEF message_id=<1@zorg.example> sender=j.jansen@zorg.example recipients=a@ziekenhuis.example,b@kliniek.example",
    "level=INFO message=audit: message received event=message_received event_id=<id> seq=2 direction=inbound client_address=unknown client_name=unknown helo=mx.peer.example queue_id=5DEF sender=x@peer.example recipients=y@zorg.example",
    "level=INFO message=audit: message classified event=classified event_id=<id> seq=3 queue_id=4ABC123DEF message_id=<1@zorg.example> classification=secure by=bypass header (false) trusted_client=true",
    "level=INFO message=audit: recipient routed event=recipient_routed event_id=<id> seq=4 rcpt_domain=kliniek.example route=smtp: verdict=not_compliant reasons=no_nta_record,no_dane evidence=txt secure (nxdomain); mx secure",
    "level=INFO message=audit: recipient routed event=recipient_routed event_id=<id> seq=5 queue_id=4ABC123DEF rcpt_domain=traag.example route= verdict=temporary reasons=servfail evidence=txt servfail",
    "level=INFO message=audit: footer added event=footer_added event_id=<id> seq=6 queue_id=4ABC123DEF parts=2",
    "level=INFO message=audit: footer skipped event=footer_skipped event_id=<id> seq=7 queue_id=4ABC123DEF reason=multipart/signed",
    "level=INFO message=audit: DKIM signed event=signed event_id=<id> seq=8 queue_id=4ABC123DEF domain=zorg.example selector=nta2026",
    "level=INFO message=audit: inbound message verified event=inbound_verified event_id=<id> seq=9 queue_id=5DEF spf=pass dkim=pass dmarc=pass arrived_securely=true reasons=",
    "level=WARN message=audit: deferred (4xx) event=deferred event_id=<id> seq=10 stage=rcpt_to reason=451 4.7.5 DNSSEC bogus",
    "level=INFO message=audit: rejected (5xx) event=rejected event_id=<id> seq=11 queue_id=5DEF stage=end_of_message reason=550 5.7.1 DMARC reject",
    "level=WARN message=audit: dry run, would have refused; went on unchanged event=would_refuse event_id=<id> seq=12 queue_id=5DEF stage=end_of_message reply=550 5.7.1 reason=NTA 7516: DMARC reject",
    "level=INFO message=audit: headers removed event=headers_removed event_id=<id> seq=13 queue_id=5DEF names=X-Ezorg-Secbypass from_trusted_client=false",
    "level=INFO message=audit: configuration loaded event=config_loaded event_id=<id> seq=14 source=/etc/nta7516-milter/config.toml generation=1",
    "level=INFO message=audit: configuration reloaded event=config_reloaded event_id=<id> seq=15 source=/etc/nta7516-milter/config.toml generation=2",
    "level=WARN message=audit: configuration refused event=config_refused event_id=<id> seq=16 source=/etc/nta7516-milter/config.toml error=line 3: unknown key",
    "level=INFO message=audit: startup event=startup event_id=<id> seq=17 version=0.1.0 milter=inet:127.0.0.1:8891 map=unix:/run/nta7516-milter/map.sock",
    "level=INFO message=audit: shutdown event=shutdown event_id=<id> seq=18 reason=SIGTERM",
    "level=WARN message=audit: message put on hold event=quarantined event_id=<id> seq=19 queue_id=6F00 reason=policy hold",
    "level=WARN message=audit: audit log recovered event=audit_log_recovered event_id=<id> seq=20 reason=torn tail lost_events=3 torn_tail_bytes=8",
];

fn cli(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nta7516-milter"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn audit_verify_command_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let rotated = dir.path().join("audit.log.1");
    write_log(&path, 6);
    fs::rename(&path, &rotated).unwrap();
    write_log(&path, 4);
    let verify = std::ffi::OsStr::new("verify");
    let audit = std::ffi::OsStr::new("audit");

    let (code, out, _) = cli(&[audit, verify, rotated.as_os_str(), path.as_os_str()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("10 lines in 2 files: chain intact"), "{out}");
    assert!(out.contains("from the genesis to seq 10"), "{out}");

    let (code, out, _) = cli(&[audit, verify, path.as_os_str()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chain start not verified"), "{out}");
    assert!(out.contains("4 lines in 1 files: chain intact"), "{out}");

    let mut l = lines(&rotated);
    l.remove(3);
    write_lines(&rotated, &l);
    let (code, out, _) = cli(&[audit, verify, rotated.as_os_str(), path.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(&format!(
            "{}:4: chain broken: prev does not match line 3 (",
            rotated.display()
        )),
        "{out}"
    );

    let missing = dir.path().join("missing.log");
    let (code, _, err) = cli(&[audit, verify, missing.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.log"), "{err}");

    let (code, _, _) = cli(&[audit, verify]);
    assert_eq!(code, 2);
}

#[test]
fn record_says_whether_the_lines_reached_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let a = Auditor::open(Some(&path)).unwrap();
    assert!(!a.record(event(0)));
    assert!(!a.record_all(vec![event(1), event(2)]));
    // Nothing to write is nothing lost.
    assert!(a.record_all(Vec::new()));
    fs::remove_file(&path).unwrap();
    assert!(a.record_all(vec![event(3), event(4)]));
    assert!(a.record(event(5)));
    // Without a file the journal is the whole trail, by configuration.
    assert!(Auditor::open(None).unwrap().record(event(6)));
}

/// `audit show` finds one message's lines (its later lines by queue id too), a recipient
/// domain's, one event type's within a day, and prints the records as written with --json.
#[test]
fn audit_show_filters_by_message_domain_event_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(&dir);
    let auditor = Auditor::open(Some(&path)).unwrap();
    for e in all_events() {
        assert!(auditor.record(e));
    }
    drop(auditor);
    let os = std::ffi::OsStr::new;
    let (audit, show) = (os("audit"), os("show"));

    let (code, out, err) = cli(&[
        audit,
        show,
        os("--message-id"),
        os("1@zorg.example"),
        path.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    let events: Vec<&str> = out.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        events,
        [
            "message_received",
            "classified",
            "recipient_routed",
            "footer_added",
            "footer_skipped",
            "signed"
        ],
        "{out}"
    );

    let (code, out, _) = cli(&[
        audit,
        show,
        os("--domain"),
        os("kliniek.example"),
        os("--json"),
        path.as_os_str(),
    ]);
    assert_eq!(code, 0);
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The message with a recipient there, its queue's later lines, and the domain's route.
    assert!(records.iter().any(|r| r["event_type"] == "recipient_routed"
        && r["detail"]["recipient_domain"] == "kliniek.example"));
    assert!(
        records
            .iter()
            .all(|r| r["event_type"] != "inbound_verified"),
        "{out}"
    );
    // --json prints the lines exactly as written, so they still verify as a chain's lines.
    let written = fs::read_to_string(&path).unwrap();
    assert!(out.lines().all(|l| written.lines().any(|w| w == l)));

    let today = time::OffsetDateTime::now_utc().date().to_string();
    let (code, out, _) = cli(&[
        audit,
        show,
        os("--event"),
        os("deferred"),
        os("--since"),
        os(&today),
        path.as_os_str(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(" deferred minor-failure ") && out.contains("stage=rcpt_to"),
        "{out}"
    );

    let (code, out, _) = cli(&[
        audit,
        show,
        os("--until"),
        os("2000-01-01"),
        path.as_os_str(),
    ]);
    assert_eq!(
        (code, out.as_str()),
        (1, ""),
        "nothing before 2000: exit 1 like grep"
    );
    let (code, _, err) = cli(&[
        audit,
        show,
        os("--since"),
        os("yesterday"),
        path.as_os_str(),
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(&[audit, show, dir.path().join("missing").as_os_str()]);
    assert_eq!(code, 2, "{err}");
}
