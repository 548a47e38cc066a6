//! Whole-document tests: defaults, the sample file, error reporting (file, key, line).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

const FILE: &str = "test.toml";

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::from_toml_str(text, FILE) {
        Ok(c) => panic!("accepted:\n{text}\n{c:?}"),
        Err(e) => {
            assert!(!e.0.is_empty());
            assert!(e.0.iter().all(|e| e.file == FILE));
            e.0
        }
    }
}

/// Asserts an error for `key` on `line` whose message contains `needle`.
#[track_caller]
fn assert_has(errs: &[ConfigError], key: &str, line: Option<usize>, needle: &str) {
    assert!(
        errs.iter()
            .any(|e| e.key == key && e.line == line && e.message.contains(needle)),
        "no error {key} at {line:?} containing {needle:?} in:\n{}",
        ConfigErrors(errs.to_vec())
    );
}

/// The only error is for `key` on `line` and mentions `needle`.
#[track_caller]
fn assert_only(text: &str, key: &str, line: usize, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{}", ConfigErrors(errs.clone()));
    assert_has(&errs, key, Some(line), needle);
}

fn ok(text: &str) -> Config {
    Config::from_toml_str(text, FILE).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn metrics_listener_is_off_by_default_and_needs_its_own_socket() {
    assert_eq!(Config::embedded_defaults().server.metrics, None);
    assert_eq!(
        ok("[server]\nmetrics = \"unix:/run/nta7516-milter/metrics.sock\"\n")
            .server
            .metrics,
        Some(SocketSpec::Unix("/run/nta7516-milter/metrics.sock".into()))
    );
    assert_only(
        "[server]\n\nmetrics = \"inet:127.0.0.1:7516\"\n",
        "server.metrics",
        3,
        "also a front-end socket",
    );
    assert_only(
        "[server]\nmetrics = \"127.0.0.1:7518\"\n",
        "server.metrics",
        2,
        "inet:HOST:PORT",
    );
    assert_only("[server]\nmetrics = 7518\n", "server.metrics", 2, "string");
}

#[test]
fn defaults_are_valid() {
    let c = Config::embedded_defaults();
    assert_eq!(c.source, None);
    assert_eq!(c.server.milter.to_string(), "inet:127.0.0.1:7516");
    assert_eq!(c.server.map.to_string(), "inet:127.0.0.1:7517");
    assert_eq!(c.server.socket_mode, 0o660);
    assert_eq!(c.server.socket_owner, None);
    assert!(!c.server.dry_run);
    assert!(c.dns.nameservers.is_empty());
    assert_eq!(c.dns.trust_anchor_file, None);
    assert_eq!(c.dns.timeout, Duration::from_secs(5));
    assert!(c.domains.own.is_empty());
    let nets: Vec<String> = c.outbound.networks.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["127.0.0.1/32", "::1/128"]);
    assert_eq!(c.policy.default, Classification::Secure);
    assert_eq!(c.policy.bypass_header, "X-NTA7516-Bypass");
    assert_eq!(c.policy.non_compliant, NonCompliantAction::Bounce);
    assert_eq!(c.policy.fallback_relay, None);
    assert!(!c.policy.require_dmarc && !c.policy.require_spf);
    assert!(c.policy.senders.is_empty());
    assert!(c.dkim.is_empty());
    assert!(
        c.footer
            .text
            .starts_with("Dit bericht is beveiligd verzonden volgens NTA 7516")
    );
    assert!(
        c.footer
            .text
            .contains("This message was sent securely in accordance with NTA 7516")
    );
    assert!(c.footer.html.contains("<p>") && c.footer.html.contains("NTA 7516"));
    assert_eq!(c.audit.file, None);
    assert_eq!(Config::load(None), Ok(c.clone()));
    assert_eq!(ok(""), c);
    assert_eq!(ok("# nothing\n\n[server]\n[policy]\n"), c);
}

#[test]
fn sample_file_equals_defaults_and_shows_every_key() {
    let sample = include_str!("../../config/config.toml");
    let c = Config::from_toml_str(sample, "config/config.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c, Config::embedded_defaults());
    let keys = [
        "[server]",
        "milter =",
        "map =",
        "socket_owner =",
        "socket_group =",
        "socket_mode =",
        "dry_run =",
        "metrics =",
        "[dns]",
        "nameservers =",
        "trust_anchor_file =",
        "timeout =",
        "[domains]",
        "own =",
        "[outbound]",
        "networks =",
        "[policy]",
        "default =",
        "bypass_header =",
        "non_compliant =",
        "fallback_relay =",
        "require_dmarc =",
        "require_spf =",
        "[[policy.senders]]",
        "match =",
        "classification =",
        "[[dkim]]",
        "domain =",
        "selector =",
        "key =",
        "[footer]",
        "text =",
        "html =",
        "[audit]",
        "file =",
    ];
    for key in keys {
        assert!(
            sample.contains(key),
            "config/config.toml does not show {key}"
        );
    }
    // The commented-out examples in the sample, collected here, must be valid.
    let c = ok(r#"
[server]
socket_owner = "nta7516-milter"
socket_group = "postfix"
metrics = "inet:127.0.0.1:7518"
[dns]
trust_anchor_file = "/etc/nta7516-milter/root-anchors.key"
[policy]
non_compliant = "fallback"
fallback_relay = "[securemail-relay.example.nl]:25"
[[policy.senders]]
match = ["nieuwsbrief@zkh.nl", "@marketing.zkh.nl"]
classification = "standard"
[[dkim]]
domain = "zkh.nl"
selector = "nta2024"
key = "/etc/nta7516-milter/dkim/zkh.nl.pem"
[audit]
file = "/var/log/nta7516-milter/audit.log"
"#);
    assert_eq!(c.dkim.len(), 1);
    for example in [
        "socket_owner = \"nta7516-milter\"",
        "metrics = \"inet:127.0.0.1:7518\"",
        "trust_anchor_file = \"/etc/nta7516-milter/root-anchors.key\"",
        "fallback_relay = \"[securemail-relay.example.nl]:25\"",
        "match = [\"nieuwsbrief@zkh.nl\", \"@marketing.zkh.nl\"]",
        "key = \"/etc/nta7516-milter/dkim/zkh.nl.pem\"",
        "file = \"/var/log/nta7516-milter/audit.log\"",
    ] {
        assert!(sample.contains(&format!("# {example}")), "{example}");
    }
}

const FULL: &str = r#"
[server]
milter = "unix:/run/nta7516-milter/milter.sock"
map = "inet:[::1]:7517"
socket_owner = "nta7516-milter"
socket_group = "postfix"
socket_mode = "0600"
dry_run = true
metrics = "inet:127.0.0.1:7518"

[dns]
nameservers = ["192.0.2.53", "[2001:db8::53]:5353", "127.0.0.1:53"]
trust_anchor_file = "/etc/nta7516-milter/root.key"
timeout = "1500ms"

[domains]
own = ["ZKH.nl.", "ziekenhuis-voorbeeld.nl"]

[outbound]
networks = ["10.0.0.0/8", "192.0.2.25", "2001:db8:1::/48"]

[policy]
default = "standard"
bypass_header = "x-ezorg-secbypass"
non_compliant = "fallback"
fallback_relay = "[relay.example.nl]:587"
require_dmarc = true
require_spf = true

[[policy.senders]]
match = ["jan@zkh.nl"]
classification = "standard"

[[policy.senders]]
match = ["@afdeling.zkh.nl", "zkh.nl"]
classification = "secure"

[[dkim]]
domain = "zkh.nl"
selector = "sel1"
key = "/etc/nta7516-milter/dkim/zkh.pem"

[[dkim]]
domain = "ziekenhuis-voorbeeld.nl"
selector = "2024.mail"
key = "/etc/nta7516-milter/dkim/zv.pem"

[footer]
text = "Veilig verzonden."
html = "<p>Veilig verzonden.</p>"

[audit]
file = "/var/log/nta7516-milter/audit.log"
"#;

#[test]
fn full_file() {
    let c = ok(FULL);
    let d = |s: &str| DomainName::parse(s).unwrap();
    assert_eq!(
        c.server,
        ServerConfig {
            milter: SocketSpec::Unix("/run/nta7516-milter/milter.sock".into()),
            map: SocketSpec::Inet {
                host: "::1".into(),
                port: 7517
            },
            socket_owner: Some("nta7516-milter".into()),
            socket_group: Some("postfix".into()),
            socket_mode: 0o600,
            dry_run: true,
            metrics: Some(SocketSpec::Inet {
                host: "127.0.0.1".into(),
                port: 7518
            }),
        }
    );
    assert_eq!(
        c.dns,
        DnsConfig {
            nameservers: vec![
                "192.0.2.53:53".parse().unwrap(),
                "[2001:db8::53]:5353".parse().unwrap(),
                "127.0.0.1:53".parse().unwrap(),
            ],
            trust_anchor_file: Some("/etc/nta7516-milter/root.key".into()),
            timeout: Duration::from_millis(1500),
        }
    );
    assert_eq!(
        c.domains.own,
        vec![d("zkh.nl"), d("ziekenhuis-voorbeeld.nl")]
    );
    let nets: Vec<String> = c.outbound.networks.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["10.0.0.0/8", "192.0.2.25/32", "2001:db8:1::/48"]);
    assert_eq!(
        c.policy,
        PolicyConfig {
            default: Classification::Standard,
            bypass_header: "x-ezorg-secbypass".into(),
            non_compliant: NonCompliantAction::Fallback,
            fallback_relay: Some("[relay.example.nl]:587".into()),
            require_dmarc: true,
            require_spf: true,
            senders: vec![
                SenderRule {
                    patterns: vec![SenderPattern::Address("jan@zkh.nl".into())],
                    classification: Classification::Standard,
                },
                SenderRule {
                    patterns: vec![
                        SenderPattern::Domain(d("afdeling.zkh.nl")),
                        SenderPattern::Domain(d("zkh.nl")),
                    ],
                    classification: Classification::Secure,
                },
            ],
        }
    );
    assert_eq!(
        c.policy.classify_sender("<Jan@zkh.nl>"),
        Some(Classification::Standard)
    );
    assert_eq!(
        c.policy.classify_sender("piet@x.zkh.nl"),
        Some(Classification::Secure)
    );
    assert_eq!(c.policy.classify_sender("piet@elders.nl"), None);
    assert_eq!(
        c.dkim,
        vec![
            DkimConfig {
                domain: d("zkh.nl"),
                selector: "sel1".into(),
                key: "/etc/nta7516-milter/dkim/zkh.pem".into(),
            },
            DkimConfig {
                domain: d("ziekenhuis-voorbeeld.nl"),
                selector: "2024.mail".into(),
                key: "/etc/nta7516-milter/dkim/zv.pem".into(),
            },
        ]
    );
    assert_eq!(c.footer.text, "Veilig verzonden.");
    assert_eq!(c.footer.html, "<p>Veilig verzonden.</p>");
    assert_eq!(
        c.audit.file,
        Some("/var/log/nta7516-milter/audit.log".into())
    );

    assert!(c.is_own_domain(&d("zkh.nl")));
    assert!(c.is_own_domain(&d("mail.afdeling.zkh.nl")));
    assert!(!c.is_own_domain(&d("notzkh.nl")));
    assert!(!c.is_own_domain(&d("nl")));
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(c.is_outbound_network(ip("10.20.30.40")));
    assert!(c.is_outbound_network(ip("::ffff:10.20.30.40")));
    assert!(c.is_outbound_network(ip("192.0.2.25")));
    assert!(!c.is_outbound_network(ip("192.0.2.26")));
    assert!(c.is_outbound_network(ip("2001:db8:1::7")));
    assert!(!c.is_outbound_network(ip("127.0.0.1")));
    let defaults = Config::embedded_defaults();
    assert!(defaults.is_outbound_network(ip("127.0.0.1")));
    assert!(defaults.is_outbound_network(ip("::ffff:127.0.0.1")));
    assert!(defaults.is_outbound_network(ip("::1")));
    assert!(!defaults.is_outbound_network(ip("192.0.2.1")));
}

#[test]
fn load_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, FULL).unwrap();
    let c = Config::load(Some(&path)).unwrap();
    assert_eq!(c.source, Some(path.clone()));
    assert_eq!(Config { source: None, ..c }, ok(FULL));

    // Errors name the path as given.
    std::fs::write(&path, "[dns]\ntimeout = \"5\"\n").unwrap();
    let e = Config::load(Some(&path)).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].file, path.display().to_string());
    assert_eq!(
        e.0[0].to_string(),
        format!(
            "{}:2: dns.timeout: \"5\" has no unit; add one of ms, s, m, h or d, e.g. \"5s\"",
            path.display()
        )
    );

    let missing = dir.path().join("missing.toml");
    let e = Config::load(Some(&missing)).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!((e.0[0].key.as_str(), e.0[0].line), ("", None));
    assert!(e.0[0].message.starts_with("cannot read:"), "{e}");
    assert!(
        e.to_string().starts_with(&missing.display().to_string()),
        "{e}"
    );

    assert!(Config::load(Some(dir.path())).is_err());

    std::fs::write(&path, b"[server]\nmilter = \"\xff\"\n").unwrap();
    assert!(
        Config::load(Some(&path))
            .unwrap_err()
            .to_string()
            .contains("UTF-8")
    );

    let big = format!("# {}\n", "x".repeat(2 * 1024 * 1024));
    std::fs::write(&path, big).unwrap();
    assert!(
        Config::load(Some(&path))
            .unwrap_err()
            .to_string()
            .contains("1 MiB")
    );
}

#[test]
fn syntax_error_stops_with_its_line() {
    let errs = errors("[server]\nmilter = \"inet:127.0.0.1:7516\"\nmap = \n[bogus]\nx = 1\n");
    assert_eq!(errs.len(), 1, "{}", ConfigErrors(errs.clone()));
    assert_eq!(errs[0].key, "");
    assert_eq!(errs[0].line, Some(3));
    assert!(errs[0].message.starts_with("TOML syntax:"), "{}", errs[0]);

    for (text, line) in [
        ("[server\n", 1),
        ("a = \"unterminated\n", 1),
        ("\n\n[server]\ndry_run = true\ndry_run = false\n", 5),
        ("[server]\n[server]\n", 2),
        ("x = 1 2\n", 1),
        ("[dns]\ntimeout = 5s\n", 2),
        ("[server]\nsocket_mode = 0660\n", 2),
        ("[server]\nx = \"a\nb\"\n", 2),
        ("a = 'x\nb = 2\n", 1),
    ] {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text:?}");
        assert_eq!(errs[0].line, Some(line), "{text:?}: {}", errs[0]);
    }
}

#[test]
fn unknown_keys_in_every_section() {
    let text = r#"
[server]
milterr = "inet:127.0.0.1:7516"
[dns]
nameserver = ["192.0.2.53"]
[domains]
owns = []
[outbound]
network = []
[policy]
defaults = "secure"
[[policy.senders]]
matches = ["zkh.nl"]
classification = "standard"
[[dkim]]
domain = "zkh.nl"
selector = "s"
key = "/k.pem"
keyfile = "/k.pem"
[footer]
txt = ""
[audit]
path = "/var/log/x"
[logging]
level = "debug"
"#;
    let errs = errors(text);
    assert_has(&errs, "server.milterr", Some(3), "unknown field `milterr`");
    assert_has(&errs, "server.milterr", Some(3), "`milter`");
    assert_has(&errs, "dns.nameserver", Some(5), "`nameservers`");
    assert_has(&errs, "domains.owns", Some(7), "`own`");
    assert_has(&errs, "outbound.network", Some(9), "`networks`");
    assert_has(&errs, "policy.defaults", Some(11), "`default`");
    assert_has(&errs, "policy.senders[0].matches", Some(13), "`match`");
    // The rule lost its only `match`, which is then reported as missing (header line).
    assert_has(&errs, "policy.senders[0].match", Some(12), "missing");
    assert_has(
        &errs,
        "dkim[0].keyfile",
        Some(19),
        "unknown field `keyfile`",
    );
    assert_has(&errs, "footer.txt", Some(21), "`text`");
    assert_has(&errs, "audit.path", Some(23), "`file`");
    assert_has(&errs, "logging", Some(24), "unknown field `logging`");
    assert_has(&errs, "logging", Some(24), "`server`");
    assert_eq!(errs.len(), 11, "{}", ConfigErrors(errs.clone()));
    // Sorted by line.
    let lines: Vec<_> = errs.iter().map(|e| e.line.unwrap()).collect();
    assert!(lines.is_sorted(), "{lines:?}");

    // A key at the top level is an unknown section.
    assert_only("dry_run = true\n", "dry_run", 1, "unknown field `dry_run`");
    // Odd key names stay readable in the path.
    assert_only(
        "[server]\n\"a.b\" = 1\n",
        "server.\"a.b\"",
        2,
        "unknown field",
    );
}

#[test]
fn type_errors() {
    assert_only(
        "[server]\ndry_run = \"yes\"\n",
        "server.dry_run",
        2,
        "expected a boolean",
    );
    assert_only(
        "[server]\nsocket_mode = 660\n",
        "server.socket_mode",
        2,
        "expected a string",
    );
    assert_only(
        "[server]\nmilter = 7516\n",
        "server.milter",
        2,
        "expected a string",
    );
    assert_only(
        "[dns]\ntimeout = 5\n",
        "dns.timeout",
        2,
        "expected a string",
    );
    assert_only(
        "[dns]\nnameservers = \"192.0.2.53\"\n",
        "dns.nameservers",
        2,
        "sequence",
    );
    assert_only(
        "[domains]\nown = [\n  \"zkh.nl\",\n  42,\n]\n",
        "domains.own[1]",
        4,
        "expected a string",
    );
    assert_only(
        "[policy]\nrequire_dmarc = 1\n",
        "policy.require_dmarc",
        2,
        "boolean",
    );
    assert_only("[audit]\nfile = 1979-05-27\n", "audit.file", 2, "date/time");
    assert_only(
        "[domains]\nown = [\"a.nl\", 07:32:00]\n",
        "domains.own[1]",
        2,
        "date/time",
    );
    assert_only(
        "[footer]\ntext = [\"a\"]\n",
        "footer.text",
        2,
        "expected a string",
    );
    assert_only("server = 1\n", "server", 1, "expected a table");
    assert_only("[[server]]\n", "server", 1, "expected a table");
    assert_only(
        "[dkim]\ndomain = \"zkh.nl\"\n",
        "dkim",
        1,
        "array of tables",
    );
    assert_only("dkim = [1]\n", "dkim[0]", 1, "expected a table");
    assert_only(
        "[policy]\nsenders = 1\n",
        "policy.senders",
        2,
        "array of tables",
    );
    assert_only(
        "[[policy.senders]]\nmatch = \"zkh.nl\"\nclassification = \"secure\"\n",
        "policy.senders[0].match",
        2,
        "sequence",
    );
    // A required key of the wrong type is not reported again as missing.
    assert_only(
        "[[dkim]]\ndomain = 1\nselector = \"s\"\nkey = \"/k\"\n",
        "dkim[0].domain",
        2,
        "expected a string",
    );
    assert_only(
        "[policy]\nnon_compliant = \"fallback\"\nfallback_relay = 25\n",
        "policy.fallback_relay",
        3,
        "expected a string",
    );
    // Inline forms are the same document to TOML.
    let c = ok("dkim = [{ domain = \"zkh.nl\", selector = \"s\", key = \"/k\" }]\n");
    assert_eq!(c.dkim.len(), 1);
}

#[test]
fn value_errors_name_key_and_line() {
    assert_only(
        "[server]\nmilter = \"tcp:1\"\n",
        "server.milter",
        2,
        "inet:HOST:PORT",
    );
    assert_only(
        "[server]\nmap = \"inet:127.0.0.1:7516\"\n",
        "server.map",
        2,
        "different",
    );
    assert_only(
        "[server]\nsocket_mode = \"rw\"\n",
        "server.socket_mode",
        2,
        "octal",
    );
    assert_only(
        "[server]\nsocket_group = \"\"\n",
        "server.socket_group",
        2,
        "group",
    );
    assert_only(
        "[dns]\nnameservers = [\"192.0.2.1\", \"ns1.example.nl\"]\n",
        "dns.nameservers[1]",
        2,
        "IP:PORT",
    );
    assert_only(
        "[dns]\ntimeout = \"50ms\"\n",
        "dns.timeout",
        2,
        "100ms to 30s",
    );
    assert_only(
        "[dns]\ntimeout = \"31s\"\n",
        "dns.timeout",
        2,
        "milter_command_timeout",
    );
    assert_only(
        "[dns]\ntimeout = \"5 sec\"\n",
        "dns.timeout",
        2,
        "unknown unit",
    );
    assert_only(
        "[dns]\ntrust_anchor_file = \"root.key\"\n",
        "dns.trust_anchor_file",
        2,
        "absolute",
    );
    assert_only(
        "[domains]\nown = [\"*.zkh.nl\"]\n",
        "domains.own[0]",
        2,
        "wildcards",
    );
    assert_only(
        "[domains]\nown = [\"zkh..nl\"]\n",
        "domains.own[0]",
        2,
        "empty label",
    );
    assert_only(
        "[outbound]\nnetworks = [\n\"10.0.0.0/8\",\n\"10.1.0.0/8\",\n]\n",
        "outbound.networks[1]",
        4,
        "did you mean \"10.0.0.0/8\"",
    );
    assert_only(
        "[outbound]\nnetworks = [\"lan\"]\n",
        "outbound.networks[0]",
        2,
        "CIDR",
    );
    assert_only(
        "[policy]\ndefault = \"confidential\"\n",
        "policy.default",
        2,
        "expected one of \"secure\", \"standard\"",
    );
    assert_only(
        "[policy]\nnon_compliant = \"reject\"\n",
        "policy.non_compliant",
        2,
        "expected one of \"portal\", \"fallback\", \"bounce\", \"defer\"",
    );
    assert_only(
        "[policy]\nbypass_header = \"\"\n",
        "policy.bypass_header",
        2,
        "empty",
    );
    assert_only(
        "[policy]\nbypass_header = \"X Bypass\"\n",
        "policy.bypass_header",
        2,
        "' '",
    );
    assert_only(
        "[policy]\nbypass_header = \"X-NTA7516-Route\"\n",
        "policy.bypass_header",
        2,
        "choose another",
    );
    assert_only(
        "[policy]\nfallback_relay = \"relay.example.nl:smtp\"\n",
        "policy.fallback_relay",
        2,
        "[host]:port",
    );
    assert_only(
        "[[policy.senders]]\nmatch = [\"zkh.nl\"]\nclassification = \"Standard\"\n",
        "policy.senders[0].classification",
        3,
        "expected one of",
    );
    assert_only(
        "[[policy.senders]]\nmatch = [\"zkh.nl\"]\n",
        "policy.senders[0].classification",
        1,
        "missing",
    );
    assert_only(
        "[[policy.senders]]\nmatch = []\nclassification = \"secure\"\n",
        "policy.senders[0].match",
        2,
        "empty",
    );
    assert_only(
        "[[policy.senders]]\nmatch = [\"ok.nl\", \"bad address@x.nl\"]\nclassification = \"secure\"\n",
        "policy.senders[0].match[1]",
        2,
        "plain address",
    );
    assert_only("[audit]\nfile = \"\"\n", "audit.file", 2, "empty");
}

#[test]
fn dkim_entries() {
    let text = r#"
[[dkim]]
domain = "zkh.nl"
selector = "s1"
key = "/k1.pem"

[[dkim]]
selector = "s 2"
key = "relative.pem"

[[dkim]]
domain = "ZKH.NL"
selector = "s3"
key = "/k3.pem"
"#;
    let errs = errors(text);
    assert_has(&errs, "dkim[1].domain", Some(7), "missing");
    assert_has(&errs, "dkim[1].selector", Some(8), "not a selector");
    assert_has(&errs, "dkim[1].key", Some(9), "absolute");
    assert_has(
        &errs,
        "dkim[2].domain",
        Some(12),
        "zkh.nl already has a [[dkim]] entry (line 3)",
    );
    assert_eq!(errs.len(), 4, "{}", ConfigErrors(errs.clone()));
}

#[test]
fn portal_policy_requires_a_portal_section() {
    assert_only(
        "[policy]\n\nnon_compliant = \"portal\"\n",
        "policy.non_compliant",
        3,
        "needs a [portal] section",
    );
    // With the section, the same policy is valid and the route map uses its lmtp socket.
    let c = ok(&format!("[policy]\nnon_compliant = \"portal\"\n{PORTAL}"));
    assert_eq!(c.policy.non_compliant, NonCompliantAction::Portal);
    assert_eq!(
        crate::map::reply::lmtp_next_hop(&c.portal.expect("portal").lmtp),
        "inet:[127.0.0.1]:7524"
    );
    // The rule itself, with a [portal] built in code.
    use super::policy::check_portal_route;
    let portal = crate::map::reply::tests::portal("unix:/run/nta7516-milter/portal.lmtp");
    assert_eq!(
        check_portal_route(NonCompliantAction::Portal, Some(&portal)),
        Ok(())
    );
    assert!(check_portal_route(NonCompliantAction::Portal, None).is_err());
    for other in [
        NonCompliantAction::Bounce,
        NonCompliantAction::Defer,
        NonCompliantAction::Fallback,
    ] {
        assert_eq!(check_portal_route(other, None), Ok(()));
    }
}

#[test]
fn fallback_requires_relay() {
    assert_only(
        "[policy]\n\nnon_compliant = \"fallback\"\n",
        "policy.fallback_relay",
        3,
        "required when policy.non_compliant = \"fallback\"",
    );
    let c = ok("[policy]\nnon_compliant = \"fallback\"\nfallback_relay = \"relay.example.nl\"\n");
    assert_eq!(c.policy.fallback_relay.as_deref(), Some("relay.example.nl"));
    // A relay without fallback is harmless (kept for switching over).
    let c = ok("[policy]\nnon_compliant = \"defer\"\nfallback_relay = \"[192.0.2.9]:25\"\n");
    assert_eq!(c.policy.non_compliant, NonCompliantAction::Defer);
    // A bad relay is reported once, not also as missing.
    assert_only(
        "[policy]\nnon_compliant = \"fallback\"\nfallback_relay = \"a b\"\n",
        "policy.fallback_relay",
        3,
        "next-hop",
    );
}

#[test]
fn require_own_from_needs_own_domains() {
    assert!(!Config::embedded_defaults().outbound.require_own_from);
    assert_only(
        "[outbound]\n\nrequire_own_from = true\n",
        "outbound.require_own_from",
        3,
        "needs [domains] own",
    );
    let c = ok("[domains]\nown = [\"zkh.test\"]\n[outbound]\nrequire_own_from = true\n");
    assert!(c.outbound.require_own_from);
    assert_only(
        "[outbound]\nrequire_own_from = \"yes\"\n",
        "outbound.require_own_from",
        2,
        "boolean",
    );
}

#[test]
fn all_problems_in_one_run() {
    let text = r#"[server]
milter = "inet:127.0.0.1:7516"
listen = "x"

[dns]
timeout = "five seconds"

[policy]
non_compliant = "fallback"
colour = "blue"

[outbound]
networks = ["10.0.0.0/8", "not-a-net"]

[audit]
file = "relative.log"
rotate = true
"#;
    let errs = errors(text);
    let got: Vec<(&str, Option<usize>)> = errs.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("server.listen", Some(3)),
            ("dns.timeout", Some(6)),
            ("policy.fallback_relay", Some(9)),
            ("policy.colour", Some(10)),
            ("outbound.networks[1]", Some(13)),
            ("audit.file", Some(16)),
            ("audit.rotate", Some(17)),
        ],
        "{}",
        ConfigErrors(errs.clone())
    );
    let shown = ConfigErrors(errs).to_string();
    assert_eq!(shown.lines().count(), 7);
    assert!(
        shown.starts_with("test.toml:3: server.listen: unknown field `listen`"),
        "{shown}"
    );
}

/// Deterministic pseudo-random TOML-ish input: nothing may panic, and every error has a
/// line within the document.
#[test]
fn odd_input_does_not_panic() {
    let deep_array = format!("x = {}", "[".repeat(100_000));
    let deep_table = format!("x = {}", "{a=".repeat(100_000));
    let deep_header = format!("[{}b]", "a.".repeat(100_000));
    let many_keys: String = (0..20_000).map(|i| format!("k{i} = {i}\n")).collect();
    let many_bad: String = format!(
        "[domains]\nown = [{}]\n",
        (0..20_000)
            .map(|_| "\"-bad-..\"")
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut inputs = vec![
        deep_array,
        deep_table,
        deep_header,
        format!("[server]\n{many_keys}"),
        many_bad,
        "\u{feff}[server]\n".into(),
        "\0".into(),
        "[server]\nmilter = \"inet:\u{0}:1\"\n".into(),
        "[server]\nmilter = \"inet:[ü]:1\"\n".into(),
        "[policy]\nbypass_header = \"\u{202e}X\"\n".into(),
        "[dns]\ntimeout = \"99999999999999999999h\"\n".into(),
        "[dns]\ntimeout = \"18446744073709551615h\"\n".into(),
        "[[policy.senders]]\n[[policy.senders]]\nmatch = [\"@\"]\n".into(),
        "\r\n[server]\r\ndry_run = 1\r\n".into(),
    ];
    let tokens = [
        "[server]",
        "[dns]",
        "[[dkim]]",
        "[[policy.senders]]",
        "[policy]",
        "milter",
        "map",
        "timeout",
        "own",
        "=",
        "\"",
        "'",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\n",
        " ",
        "1",
        "true",
        "\"inet:[::1]:1\"",
        "\"5s\"",
        "#",
        ".",
        "domain",
        "match",
        "key",
        "é",
        "\\",
        "0x1",
        "1979-05-27T07:32:00Z",
        "nan",
        "-inf",
        "\"\"\"",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3_000 {
        let mut s = String::new();
        for _ in 0..(seed % 40) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(tokens[(seed % tokens.len() as u64) as usize]);
        }
        inputs.push(s);
    }
    for text in &inputs {
        if let Err(e) = Config::from_toml_str(text, FILE) {
            let lines = text.lines().count().max(1);
            for err in &e.0 {
                assert!(
                    err.line.is_none_or(|l| l >= 1 && l <= lines + 1),
                    "{err} in {text:?}"
                );
            }
        }
    }
    let errs = errors("[dns]\ntimeout = \"99999999999999999999h\"\n");
    assert_has(&errs, "dns.timeout", Some(2), "too large");
}

#[test]
fn sources_and_paths() {
    let c = ok("[audit]\nfile = \"/var/log/a.log\"\n");
    assert_eq!(c.audit.file, Some(PathBuf::from("/var/log/a.log")));
    assert_eq!(c.source, None);
}

#[test]
fn inbound_section() {
    use super::{DmarcEnforcement, TempErrorAction};
    let c = ok(
        "[inbound]\nauthserv_id = \"mx.zkh.nl\"\ndmarc = \"honour\"\ntemp_error = \"tempfail\"\nsubject_tag_insecure = \"[ONVEILIG] \"\n",
    );
    assert_eq!(c.inbound.authserv_id.as_deref(), Some("mx.zkh.nl"));
    assert_eq!(c.inbound.dmarc, DmarcEnforcement::Honour);
    assert_eq!(c.inbound.temp_error, TempErrorAction::Tempfail);
    assert_eq!(c.inbound.subject_tag_insecure, "[ONVEILIG] ");
    assert_eq!(c.inbound.subject_tag_secure, "");
    let d = Config::embedded_defaults();
    assert_eq!(d.inbound.dmarc, DmarcEnforcement::None);
    assert_eq!(d.inbound.temp_error, TempErrorAction::Annotate);
    assert_eq!(d.inbound.authserv_id, None);

    assert_only(
        "[inbound]\ndmarc = \"strict\"\n",
        "inbound.dmarc",
        2,
        "expected one of",
    );
    assert_only(
        "[inbound]\nauthserv_id = \"mx zkh\"\n",
        "inbound.authserv_id",
        2,
        "authserv-id",
    );
    assert_only(
        "[inbound]\nsubject_tag_secure = \"a\\nb\"\n",
        "inbound.subject_tag_secure",
        2,
        "one line",
    );
    assert_only(
        "[inbound]\nbogus = 1\n",
        "inbound.bogus",
        2,
        "unknown field",
    );
}

/// The `[portal]` example of config/config.toml, uncommented.
const PORTAL: &str = r#"[domains]
own = ["ziekenhuis.nl"]
[audit]
file = "/var/log/nta7516-milter/audit.log"
[portal]
listen = "inet:127.0.0.1:7580"
public_url = "https://portaal.ziekenhuis.nl/"
lmtp = "inet:127.0.0.1:7524"
store = "sqlite:/var/lib/nta7516-milter/portal.db"
key_file = "/etc/nta7516-milter/portal.key"
from = "portaal@ziekenhuis.nl"
[portal.sms]
provider = "webhook"
url = "https://sms.ziekenhuis.nl/send"
token_file = "/etc/nta7516-milter/sms.token"
"#;

#[test]
fn portal_section() {
    use super::portal::{SmsProvider, StoreLocation};
    assert_eq!(Config::embedded_defaults().portal, None);
    let c = ok(PORTAL);
    let p = c.portal.expect("portal");
    assert_eq!(p.public_url, "https://portaal.ziekenhuis.nl");
    assert_eq!(p.lmtp.to_string(), "inet:127.0.0.1:7524");
    assert_eq!(
        p.store,
        StoreLocation::Sqlite("/var/lib/nta7516-milter/portal.db".into())
    );
    assert_eq!(p.retention, Duration::from_secs(30 * 86_400));
    assert_eq!(
        p.submit,
        crate::config::portal::Submission::Sendmail(PathBuf::from("/usr/sbin/sendmail"))
    );
    assert_eq!(p.organisation, "ziekenhuis.nl");
    assert_eq!(p.max_message_size, 50 * 1024 * 1024);
    assert_eq!(
        p.audit_file,
        Some(PathBuf::from("/var/log/nta7516-milter/portal-audit.log"))
    );
    assert_eq!(p.sms.provider, SmsProvider::Webhook);
    assert_eq!(p.sms.sender, "Portaal");
    assert_eq!(
        p.mail_key,
        PathBuf::from("/etc/nta7516-milter/portal-mail.key")
    );

    // Every key of the sample, uncommented, is accepted.
    let full = ok(&PORTAL.replace(
            "[portal.sms]",
            "retention = \"7d\"\nsendmail = \"/usr/local/sbin/sendmail\"\norganisation = \"Ziekenhuis\"\nmax_message_size = 1048576\naudit_file = \"/var/log/p.log\"\nmail_key = \"/etc/m.key\"\n[portal.sms]\nsender = \"Ziekenhuis\"",
    ));
    let full = full.portal.unwrap();
    assert_eq!(full.retention, Duration::from_secs(7 * 86_400));
    assert_eq!(full.organisation, "Ziekenhuis");
    assert_eq!(full.max_message_size, 1_048_576);
    assert_eq!(full.audit_file, Some(PathBuf::from("/var/log/p.log")));
    assert_eq!(full.sms.sender, "Ziekenhuis");
    let cm = ok(&PORTAL.replace(
        "provider = \"webhook\"\nurl = \"https://sms.ziekenhuis.nl/send\"",
        "provider = \"cm\"",
    ));
    assert_eq!(
        cm.portal.unwrap().sms.url,
        "https://gw.messaging.cm.com/v1.0/message"
    );
    let pg = ok(&PORTAL.replace(
        "sqlite:/var/lib/nta7516-milter/portal.db",
        "postgres://portal@db/portal",
    ));
    assert!(matches!(
        pg.portal.unwrap().store,
        StoreLocation::Postgres(_)
    ));
    let no_audit = ok(&PORTAL.replace("file = \"/var/log/nta7516-milter/audit.log\"\n", ""));
    assert_eq!(no_audit.portal.unwrap().audit_file, None);
    // http on loopback (tests).
    ok(&PORTAL.replace("https://portaal.ziekenhuis.nl/", "http://127.0.0.1:7580"));
}

/// `PORTAL` with `line` after `from` (line 12).
fn portal_with(line: &str) -> String {
    PORTAL.replace(
        "from = \"portaal@ziekenhuis.nl\"\n",
        &format!("from = \"portaal@ziekenhuis.nl\"\n{line}\n"),
    )
}

#[test]
fn portal_submits_by_smtp_to_a_loopback_listener_or_by_sendmail() {
    use super::portal::Submission;
    let smtp = ok(&portal_with("submit = \"inet:127.0.0.1:25\""));
    assert_eq!(
        smtp.portal.unwrap().submit,
        Submission::Smtp {
            addr: "127.0.0.1:25".parse().unwrap(),
            login: false
        }
    );
    let login = ok(&portal_with(
        "submit = \"inet:127.0.0.1:25\"\nsubmit_auth = true",
    ));
    assert_eq!(
        login.portal.unwrap().submit,
        Submission::Smtp {
            addr: "127.0.0.1:25".parse().unwrap(),
            login: true
        }
    );
    assert_only(
        &portal_with("submit_auth = true"),
        "portal.submit_auth",
        12,
        "set submit as well",
    );
    assert_only(
        &portal_with("submit = \"inet:127.0.0.1:25\"\nsubmit_auth = \"yes\""),
        "portal.submit_auth",
        13,
        "bool",
    );
    let v6 = ok(&portal_with("submit = \"inet:[::1]:587\""));
    assert_eq!(
        v6.portal.unwrap().submit,
        Submission::Smtp {
            addr: "[::1]:587".parse().unwrap(),
            login: false
        }
    );
    let own = ok(&portal_with("sendmail = \"/usr/local/sbin/sendmail\""));
    assert_eq!(
        own.portal.unwrap().submit,
        Submission::Sendmail("/usr/local/sbin/sendmail".into())
    );
    for (value, why) in [
        ("inet:192.0.2.1:25", "loopback"),
        ("inet:localhost:25", "IP address"),
        ("unix:/run/postfix.sock", "unix"),
        ("inet:127.0.0.1:0", "inet:127.0.0.1:25"),
        ("127.0.0.1:25", "inet:127.0.0.1:25"),
    ] {
        assert_only(
            &portal_with(&format!("submit = \"{value}\"")),
            "portal.submit",
            12,
            why,
        );
    }
    assert_only(
        &portal_with("submit = \"inet:127.0.0.1:25\"\nsendmail = \"/usr/sbin/sendmail\""),
        "portal.submit",
        12,
        "not both",
    );
}

#[test]
fn portal_errors_name_key_and_line() {
    // `from` outside [domains] own: line 11.
    assert_only(
        &PORTAL.replace("portaal@ziekenhuis.nl", "portaal@elders.nl"),
        "portal.from",
        11,
        "[domains] own",
    );
    assert_only(
        &PORTAL.replace(
            "https://portaal.ziekenhuis.nl/",
            "http://portaal.ziekenhuis.nl",
        ),
        "portal.public_url",
        7,
        "https",
    );
    assert_only(
        &PORTAL.replace("sqlite:/var", "sqlite:var"),
        "portal.store",
        9,
        "absolute",
    );
    assert_only(
        &PORTAL.replace("inet:127.0.0.1:7524", "inet:127.0.0.1:7580"),
        "portal.lmtp",
        8,
        "portal.listen",
    );
    assert_only(
        &PORTAL.replace("provider = \"webhook\"", "provider = \"sms77\""),
        "portal.sms.provider",
        13,
        "webhook",
    );
    assert_only(
        &PORTAL.replace("url = \"https://sms.ziekenhuis.nl/send\"\n", ""),
        "portal.sms.url",
        12,
        "webhook",
    );
    assert_only(
        &PORTAL.replace("[portal.sms]", "bogus = 1\n[portal.sms]"),
        "portal.bogus",
        12,
        "unknown field",
    );
    let errs = errors(&PORTAL.replace("token_file", "token"));
    assert_has(&errs, "portal.sms.token", Some(15), "unknown field");
    assert_has(&errs, "portal.sms.token_file", Some(12), "missing");
    assert_only(
        &PORTAL.replace("[portal.sms]", "retention = \"10m\"\n[portal.sms]"),
        "portal.retention",
        12,
        "too short",
    );
    assert_only(
        &PORTAL.replace(
            "[portal.sms]",
            "audit_file = \"/var/log/nta7516-milter/audit.log\"\n[portal.sms]",
        ),
        "portal.audit_file",
        12,
        "own hash chain",
    );
    // Missing required keys and section: reported at the [portal] header (line 5).
    let errs = errors("[portal]\n");
    for key in [
        "listen",
        "public_url",
        "lmtp",
        "store",
        "key_file",
        "from",
        "sms",
    ] {
        assert_has(&errs, &format!("portal.{key}"), Some(1), "missing");
    }
    // A wrong type.
    assert_only(
        &PORTAL.replace("[portal.sms]", "max_message_size = \"big\"\n[portal.sms]"),
        "portal.max_message_size",
        12,
        "invalid type",
    );
}
