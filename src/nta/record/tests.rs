use super::*;
use time::macros::date;

fn dn(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn ym(year: i32, month: u8) -> YearMonth {
    YearMonth::new(year, month).unwrap()
}

fn err(txt: &str) -> RecordError {
    parse(txt).expect_err(txt)
}

fn hosts(record: &NtaRecord) -> Vec<String> {
    record.targets().iter().map(|h| h.to_string()).collect()
}

const CRYPTSHARE: &str = "v=NTA7516-1;startdate=2019-06;enddate=2023-07;provider=Cryptshare;ntamx=10 nta7516-mx.myorganisation.nl";
const BASTION: &str = "v=NTA7516-1;startdate=2024-01;enddate=2026-12;provider=Fenestrae;ntamx=nta7516.sdxmail-net.nta7516.services.sdxmail.net";
const SMARTLOCKR: &str = "v=NTA7516;version:2019-06;expire:2019-10;provider:smartlockr;ntamx:mx.mail.de;ntamx:mx2.mail.de";
const VALID: &str =
    "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=10 mx.example.nl";

#[test]
fn limits_are_pinned() {
    assert_eq!(MAX_RECORD_LEN, 4096);
    assert_eq!(MAX_NTAMX, 10);
    assert_eq!(MAX_TXT_RECORDS, 1000);
}

#[test]
fn cryptshare_example() {
    let r = parse(CRYPTSHARE).unwrap();
    assert_eq!(r.syntax, Syntax::Current);
    assert_eq!(r.start, ym(2019, 6));
    assert_eq!(r.end, ym(2023, 7));
    assert_eq!(r.provider, "Cryptshare");
    assert_eq!(
        r.ntamx,
        vec![NtaMx {
            preference: Some(10),
            host: dn("nta7516-mx.myorganisation.nl"),
        }]
    );
    assert_eq!(r.raw, CRYPTSHARE);
    assert_eq!(r.first_valid_day(), date!(2019 - 06 - 01));
    assert_eq!(r.last_valid_day(), date!(2023 - 07 - 31));
    assert_eq!(hosts(&r), ["nta7516-mx.myorganisation.nl"]);
}

#[test]
fn bastion_example_without_preference() {
    let r = parse(BASTION).unwrap();
    assert_eq!(r.provider, "Fenestrae");
    assert_eq!(r.ntamx.len(), 1);
    assert_eq!(r.ntamx[0].preference, None);
    assert_eq!(
        hosts(&r),
        ["nta7516.sdxmail-net.nta7516.services.sdxmail.net"]
    );
}

#[test]
fn smartlockr_2019_example() {
    let r = parse(SMARTLOCKR).unwrap();
    assert_eq!(r.syntax, Syntax::Legacy2019);
    assert_eq!(r.start, ym(2019, 6));
    assert_eq!(r.end, ym(2019, 10));
    assert_eq!(r.provider, "smartlockr");
    assert_eq!(hosts(&r), ["mx.mail.de", "mx2.mail.de"]);
    assert_eq!(r.last_valid_day(), date!(2019 - 10 - 31));
}

#[test]
fn no_ntamx_means_empty_targets() {
    let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X").unwrap();
    assert!(r.ntamx.is_empty());
    assert!(r.targets().is_empty());
}

#[test]
fn separators_and_key_names_mix_freely() {
    let forms = [
        "v=NTA7516-1;startdate:2024-01;enddate=2025-12;provider:X;ntamx:10 mx.example.nl",
        "v=NTA7516-1;version=2024-01;expire=2025-12;provider=X;ntamx=10 mx.example.nl",
        "v=NTA7516-1;version:2024-01;enddate:2025-12;provider=X;ntamx=10 mx.example.nl",
    ];
    let expected = parse(VALID).unwrap();
    for form in forms {
        let r = parse(form).unwrap();
        assert!(r.same_content(&expected), "{form}");
    }
    let legacy = parse("v=NTA7516;startdate=2019-06;enddate=2019-10;provider=s").unwrap();
    assert_eq!(legacy.syntax, Syntax::Legacy2019);
    assert_eq!(legacy.end, ym(2019, 10));
}

#[test]
fn whitespace_case_and_trailing_separators() {
    let txt = "  V = nta7516-1 ;  STARTDATE = 2024-01 ;\tEndDate: 2025-12 ; Provider = Some Provider B.V. ; NTAMX =  10   MX.Example.NL.  ;;; ";
    let r = parse(txt).unwrap();
    assert_eq!(r.syntax, Syntax::Current);
    assert_eq!(r.start, ym(2024, 1));
    assert_eq!(r.end, ym(2025, 12));
    assert_eq!(r.provider, "Some Provider B.V.");
    assert_eq!(r.ntamx[0].preference, Some(10));
    assert_eq!(r.ntamx[0].host, dn("mx.example.nl"));
    assert_eq!(r.raw, txt);
}

#[test]
fn trailing_dot_hosts_and_tab_between_preference_and_host() {
    let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=5\tmx.example.nl.;ntamx=mx2.example.nl.").unwrap();
    assert_eq!(hosts(&r), ["mx.example.nl", "mx2.example.nl"]);
}

#[test]
fn value_may_contain_separators() {
    let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=a=b:c").unwrap();
    assert_eq!(r.provider, "a=b:c");
}

#[test]
fn unknown_keys_are_ignored_even_when_empty() {
    let r = parse("v=NTA7516-1;startdate=2024-01;foo=bar;enddate=2025-12;x-note=;provider=X;comment:hello world").unwrap();
    assert_eq!(r.provider, "X");
}

#[test]
fn targets_order_by_preference_then_written_order() {
    let r = parse(
        "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;\
         ntamx=nopref-a.example;ntamx=20 b.example;ntamx=10 c.example;\
         ntamx=20 a.example;ntamx=nopref-b.example;ntamx=0 z.example",
    )
    .unwrap();
    assert_eq!(
        hosts(&r),
        [
            "z.example",
            "c.example",
            "b.example",
            "a.example",
            "nopref-a.example",
            "nopref-b.example"
        ]
    );
    // The written order is kept in `ntamx` itself.
    assert_eq!(r.ntamx[0].host, dn("nopref-a.example"));
}

#[test]
fn targets_drop_duplicates_keeping_best_position() {
    let r = parse(
        "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;\
         ntamx=30 a.example;ntamx=10 b.example;ntamx=20 A.EXAMPLE.;ntamx=b.example;ntamx=40 c.example",
    )
    .unwrap();
    assert_eq!(r.ntamx.len(), 5);
    assert_eq!(hosts(&r), ["b.example", "a.example", "c.example"]);
}

#[test]
fn preference_bounds() {
    let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=65535 a.example;ntamx=0 b.example;ntamx=007 c.example").unwrap();
    assert_eq!(
        r.ntamx.iter().map(|m| m.preference).collect::<Vec<_>>(),
        [Some(65535), Some(0), Some(7)]
    );
    assert_eq!(hosts(&r), ["b.example", "c.example", "a.example"]);
}

#[test]
fn max_ntamx_is_accepted_one_more_is_not() {
    let base = "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X";
    let mut txt = base.to_string();
    for i in 0..MAX_NTAMX {
        txt.push_str(&format!(";ntamx={i} mx{i}.example.nl"));
    }
    assert_eq!(parse(&txt).unwrap().ntamx.len(), MAX_NTAMX);
    txt.push_str(";ntamx=99 extra.example.nl");
    assert_eq!(err(&txt), RecordError::TooManyNtamx);
    assert_eq!(err(&txt).to_string(), "more than 10 ntamx entries");
}

#[test]
fn record_length_limit() {
    let base = "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;";
    let mut txt = base.to_string();
    txt.push_str(&"x".repeat(MAX_RECORD_LEN - base.len() - 2));
    txt.push_str("=y");
    assert_eq!(txt.len(), MAX_RECORD_LEN);
    assert!(parse(&txt).is_ok());
    txt.push(' ');
    assert_eq!(
        err(&txt),
        RecordError::TooLong {
            len: MAX_RECORD_LEN + 1
        }
    );
    // Checked before anything else: even an otherwise empty record.
    assert_eq!(
        err(&";".repeat(100_000)),
        RecordError::TooLong { len: 100_000 }
    );
}

#[test]
fn long_values_from_multi_string_txt() {
    // A TXT character-string holds 255 bytes; joined records can carry longer values.
    let provider = "P".repeat(300);
    let r = parse(&format!(
        "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider={provider}"
    ))
    .unwrap();
    assert_eq!(r.provider, provider);

    let label = "a".repeat(255);
    let e = err(&format!(
        "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=10 {label}.example"
    ));
    assert!(matches!(e, RecordError::BadNtamxHost { .. }), "{e:?}");
    // The message quotes a readable prefix, not the whole value.
    assert!(e.to_string().len() < 300, "{e}");
    assert!(e.to_string().contains('…'));
}

#[test]
fn empty_and_separator_only() {
    assert_eq!(err(""), RecordError::Empty);
    assert_eq!(err("   "), RecordError::Empty);
    assert_eq!(err(";;;;"), RecordError::Empty);
    assert_eq!(err(" ; ; ;"), RecordError::Empty);
}

#[test]
fn missing_or_misplaced_version() {
    assert_eq!(
        err("startdate=2024-01;enddate=2025-12;provider=X"),
        RecordError::MissingVersion {
            first: "startdate=2024-01".into()
        }
    );
    assert_eq!(
        err("provider=X;v=NTA7516-1;startdate=2024-01;enddate=2025-12"),
        RecordError::VersionNotFirst {
            first: "provider=X".into()
        }
    );
    assert!(matches!(
        err("v spf1 include:x"),
        RecordError::MissingVersion { .. }
    ));
    assert_eq!(
        err("v=spf1 -all"),
        RecordError::NotNta {
            version: "spf1 -all".into()
        }
    );
    assert_eq!(
        err("v=;startdate=2024-01"),
        RecordError::EmptyValue { field: "v".into() }
    );
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-01;v=NTA7516-1;enddate=2025-12;provider=X"),
        RecordError::DuplicateField { field: "v" }
    );
}

#[test]
fn unsupported_versions() {
    for v in [
        "NTA7516-2",
        "nta7516-0",
        "NTA75160",
        "NTA7516-1.1",
        "NTA7516-",
    ] {
        assert_eq!(
            err(&format!(
                "v={v};startdate=2024-01;enddate=2025-12;provider=X"
            )),
            RecordError::UnsupportedVersion { version: v.into() },
            "{v}"
        );
    }
    assert_eq!(
        err("v=NTA7516-2;startdate=2024-01").to_string(),
        "unsupported NTA 7516 record version NTA7516-2 (supported: NTA7516-1 and the 2019 form NTA7516)"
    );
}

#[test]
fn missing_fields() {
    assert_eq!(
        err("v=NTA7516-1;enddate=2025-12;provider=X"),
        RecordError::MissingField {
            field: "startdate (or version)"
        }
    );
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-01;provider=X"),
        RecordError::MissingField {
            field: "enddate (or expire)"
        }
    );
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;ntamx=10 mx.example.nl"),
        RecordError::MissingField { field: "provider" }
    );
    assert_eq!(
        err("v=NTA7516-1").to_string(),
        "required field startdate (or version) is missing"
    );
}

#[test]
fn empty_values() {
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider="),
        RecordError::EmptyValue {
            field: "provider".into()
        }
    );
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;Provider:   "),
        RecordError::EmptyValue {
            field: "provider".into()
        }
    );
    assert_eq!(
        err("v=NTA7516-1;startdate=;enddate=2025-12;provider=X"),
        RecordError::EmptyValue {
            field: "startdate".into()
        }
    );
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx="),
        RecordError::EmptyValue {
            field: "ntamx".into()
        }
    );
    assert_eq!(
        err("v=NTA7516-1;provider=").to_string(),
        "field provider has an empty value"
    );
}

#[test]
fn duplicate_fields() {
    let cases = [
        (
            "v=NTA7516-1;startdate=2024-01;startdate=2024-02;enddate=2025-12;provider=X",
            "startdate (or version)",
        ),
        (
            "v=NTA7516-1;startdate=2024-01;version=2024-01;enddate=2025-12;provider=X",
            "startdate (or version)",
        ),
        (
            "v=NTA7516;version:2019-06;expire:2019-10;expire:2019-11;provider:s",
            "enddate (or expire)",
        ),
        (
            "v=NTA7516-1;startdate=2024-01;enddate=2025-12;expire=2025-12;provider=X",
            "enddate (or expire)",
        ),
        (
            "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;PROVIDER=X",
            "provider",
        ),
    ];
    for (txt, field) in cases {
        assert_eq!(err(txt), RecordError::DuplicateField { field }, "{txt}");
    }
}

#[test]
fn bad_months() {
    for value in [
        "2025-13",
        "2025-00",
        "2025-1",
        "25-01",
        "2025/01",
        "2025-011",
        "0999-01",
        "202a-01",
        "2025-0x",
        "+025-01",
        "2025-1 ",
        "２０２５-01",
        "2025–01",
    ] {
        let txt = format!("v=NTA7516-1;startdate=2024-01;enddate={value};provider=X");
        let e = err(&txt);
        assert!(
            matches!(&e, RecordError::BadMonth { field, .. } if field == "enddate"),
            "{value:?}: {e:?}"
        );
    }
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-01;enddate=2025-13;provider=X").to_string(),
        "enddate 2025-13 is not a valid YYYY-MM month"
    );
    assert_eq!(
        err("v=NTA7516;version:2019-00;expire:2019-10;provider:s").to_string(),
        "version 2019-00 is not a valid YYYY-MM month"
    );
}

#[test]
fn month_range_edges() {
    assert_eq!(YearMonth::parse("1000-01"), Some(ym(1000, 1)));
    assert_eq!(YearMonth::parse("9999-12"), Some(ym(9999, 12)));
    assert_eq!(YearMonth::parse("0000-01"), None);
    assert_eq!(YearMonth::new(2024, 0), None);
    assert_eq!(YearMonth::new(10000, 1), None);
    assert_eq!(ym(2024, 3).to_string(), "2024-03");
    assert_eq!(ym(9999, 12).last_day(), date!(9999 - 12 - 31));
}

#[test]
fn hand_built_out_of_range_months_do_not_panic() {
    let odd = YearMonth {
        year: i32::MAX,
        month: 200,
    };
    assert_eq!(odd.last_day(), date!(9999 - 12 - 31));
    let odd = YearMonth {
        year: i32::MIN,
        month: 0,
    };
    assert_eq!(odd.first_day(), date!(-9999 - 01 - 01));
}

#[test]
fn end_before_start() {
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-06;enddate=2024-05;provider=X"),
        RecordError::EndBeforeStart {
            start: ym(2024, 6),
            end: ym(2024, 5)
        }
    );
    assert_eq!(
        err("v=NTA7516-1;startdate=2024-06;enddate=2023-12;provider=X").to_string(),
        "enddate 2023-12 is before startdate 2024-06"
    );
    // A single-month window is fine.
    let r = parse("v=NTA7516-1;startdate=2024-06;enddate=2024-06;provider=X").unwrap();
    assert_eq!(r.first_valid_day(), date!(2024 - 06 - 01));
    assert_eq!(r.last_valid_day(), date!(2024 - 06 - 30));
}

#[test]
fn provider_with_control_characters() {
    let e = err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=Evil\r\nX-Header: 1");
    assert_eq!(
        e,
        RecordError::BadProvider {
            value: "Evil\\r\\nX-Header: 1".into()
        }
    );
    assert!(!e.to_string().contains('\n'));
    // Non-ASCII but printable is a legitimate company name.
    let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=Zorg Één").unwrap();
    assert_eq!(r.provider, "Zorg Één");
}

#[test]
fn bad_ntamx() {
    let base = "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=";
    let pref = |v: &str| RecordError::BadNtamxPreference { value: v.into() };
    let syntax = |v: &str| RecordError::BadNtamxSyntax { value: v.into() };
    let numeric = |v: &str| RecordError::NtamxNotHostName { value: v.into() };
    let cases = [
        ("70000 mx.example.nl", pref("70000 mx.example.nl")),
        ("65536 mx.example.nl", pref("65536 mx.example.nl")),
        ("x mx.example.nl", pref("x mx.example.nl")),
        ("-1 mx.example.nl", pref("-1 mx.example.nl")),
        ("+10 mx.example.nl", pref("+10 mx.example.nl")),
        ("10 mx.example.nl extra", syntax("10 mx.example.nl extra")),
        ("10", numeric("10")),
        ("192.0.2.25", numeric("192.0.2.25")),
        ("10 192.0.2.25", numeric("10 192.0.2.25")),
    ];
    for (value, expected) in cases {
        assert_eq!(err(&format!("{base}{value}")), expected, "{value}");
    }
    for value in [
        "10 mx..example.nl",
        "mx_exa!mple",
        "10 mx/example.nl",
        "10 .",
        "10 [192.0.2.1]",
    ] {
        let e = err(&format!("{base}{value}"));
        assert!(
            matches!(e, RecordError::BadNtamxHost { .. }),
            "{value}: {e:?}"
        );
    }
    assert_eq!(
        err(&format!("{base}10 mx..example.nl")).to_string(),
        "ntamx 10 mx..example.nl has an invalid host name: empty label in \"mx..example.nl\""
    );
    assert_eq!(
        err(&format!("{base}70000 host.example")).to_string(),
        "ntamx 70000 host.example has an invalid preference (expected a number from 0 to 65535)"
    );
}

#[test]
fn field_without_separator() {
    assert_eq!(
        err("v=NTA7516-1;2024-01;2025-12;Fenestrae"),
        RecordError::NoSeparator {
            field: "2024-01".into()
        }
    );
}

#[test]
fn non_ascii_and_binary_garbage() {
    for txt in [
        "\u{0}\u{1}\u{fffd}\u{fffd}",
        "v=NTA7516-1;\u{fffd}\u{fffd}",
        "ǝʌ=NTA7516-1;startdate=2024-01",
        "v=ＮＴＡ7516-1;startdate=2024-01;enddate=2025-12;provider=X",
        "v=NTA7516-1\u{0};startdate=2024-01;enddate=2025-12;provider=X",
    ] {
        assert!(parse(txt).is_err(), "{txt:?}");
    }
    // Control characters are escaped in messages, never passed through.
    let e = err("\u{1b}[31mred;v=NTA7516-1");
    assert!(!e.to_string().contains('\u{1b}'), "{e}");
    // A non-ASCII unknown key is just an unknown key.
    let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;sleutel€=ja").unwrap();
    assert_eq!(r.provider, "X");
    // Cutting a long multi-byte value for the message stays on character boundaries.
    let provider = format!("\u{7}{}", "é".repeat(500));
    let e = err(&format!(
        "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider={provider}"
    ));
    let RecordError::BadProvider { value } = e else {
        panic!("{e:?}")
    };
    assert!(value.starts_with("\\u{7}éé"), "{value}");
    assert!(value.ends_with("é…"), "{value}");
    // Bidirectional overrides are shown escaped.
    let e = err("x\u{202e}lmth.exe;v=NTA7516-1");
    assert!(e.to_string().contains("\\u{202e}"), "{e}");
}

#[test]
fn validity_window_boundaries() {
    let r = parse("v=NTA7516-1;startdate=2024-02;enddate=2025-02;provider=X").unwrap();
    assert_eq!(r.first_valid_day(), date!(2024 - 02 - 01));
    assert_eq!(r.last_valid_day(), date!(2025 - 02 - 28));
    assert_eq!(
        r.validity(date!(2024 - 01 - 31)),
        Validity::NotYetValid {
            starts: date!(2024 - 02 - 01)
        }
    );
    assert_eq!(
        r.validity(date!(2024 - 02 - 01)),
        Validity::Valid { days_left: 393 }
    );
    assert_eq!(
        r.validity(date!(2025 - 02 - 27)),
        Validity::Valid { days_left: 1 }
    );
    ends_on(&r, date!(2025 - 02 - 28));
}

/// `last` is the record's last valid day (0 days left) and the day after it has expired.
fn ends_on(r: &NtaRecord, last: time::Date) {
    assert_eq!(r.validity(last), Validity::Valid { days_left: 0 });
    let next = last.next_day().unwrap();
    assert_eq!(r.validity(next), Validity::Expired { ended: last });
}

#[test]
fn february_last_day_in_leap_years() {
    let last = |y: i32| ym(y, 2).last_day();
    assert_eq!(last(2024), date!(2024 - 02 - 29));
    assert_eq!(last(2023), date!(2023 - 02 - 28));
    assert_eq!(last(2000), date!(2000 - 02 - 29));
    assert_eq!(last(2100), date!(2100 - 02 - 28));

    let r = parse("v=NTA7516-1;startdate=2023-01;enddate=2024-02;provider=X").unwrap();
    ends_on(&r, date!(2024 - 02 - 29));
    assert_eq!(ym(2024, 12).last_day(), date!(2024 - 12 - 31));
    assert_eq!(ym(2024, 4).last_day(), date!(2024 - 04 - 30));
}

#[test]
fn serialization_shapes() {
    let v = serde_json::to_value(Validity::Expired {
        ended: date!(2024 - 02 - 29),
    })
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"status": "expired", "ended": "2024-02-29"})
    );
    let v = serde_json::to_value(Validity::Valid { days_left: 3 }).unwrap();
    assert_eq!(v, serde_json::json!({"status": "valid", "days_left": 3}));
    let v = serde_json::to_value(err("v=NTA7516-2")).unwrap();
    assert_eq!(
        v,
        serde_json::json!(
            "unsupported NTA 7516 record version NTA7516-2 (supported: NTA7516-1 and the 2019 form NTA7516)"
        )
    );
    let v = serde_json::to_value(parse(CRYPTSHARE).unwrap()).unwrap();
    assert_eq!(v["syntax"], "current");
    assert_eq!(v["ntamx"][0]["host"], "nta7516-mx.myorganisation.nl");
    assert_eq!(v["ntamx"][0]["preference"], 10);
    let v = serde_json::to_value(select(&[SMARTLOCKR.to_string()])).unwrap();
    assert_eq!(v["status"], "found");
    assert_eq!(v["syntax"], "legacy2019");
    let v = serde_json::to_value(select(&["v=NTA7516-9".to_string()])).unwrap();
    assert_eq!(v["status"], "malformed");
    assert_eq!(v["raw"], "v=NTA7516-9");
}

#[test]
fn candidates() {
    assert!(is_nta_candidate(CRYPTSHARE));
    assert!(is_nta_candidate(SMARTLOCKR));
    assert!(is_nta_candidate("  v=nta7516-garbage"));
    assert!(is_nta_candidate("V=NTA7516"));
    assert!(!is_nta_candidate("v=spf1 -all"));
    assert!(!is_nta_candidate("v=NTA751"));
    assert!(!is_nta_candidate(""));
    assert!(!is_nta_candidate("google-site-verification=v=NTA7516"));
    assert!(!is_nta_candidate("v=NTA75é6"));
    assert!(!is_nta_candidate("é"));
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const SPF: &str = "v=spf1 include:spf.protection.outlook.com -all";
const VERIFY: &str = "google-site-verification=abc123";

#[test]
fn select_absent() {
    assert_eq!(select(&[]), Selection::Absent);
    assert_eq!(select(&strings(&[SPF, VERIFY])), Selection::Absent);
}

#[test]
fn select_one_among_others() {
    let sel = select(&strings(&[SPF, VERIFY, CRYPTSHARE, "MS=ms12345"]));
    assert_eq!(sel, Selection::Found(parse(CRYPTSHARE).unwrap()));
}

#[test]
fn select_identical_duplicates_count_once() {
    let sel = select(&strings(&[SMARTLOCKR, SPF, SMARTLOCKR]));
    assert_eq!(sel, Selection::Found(parse(SMARTLOCKR).unwrap()));
    // Even a malformed one repeated is one malformed record, not a conflict.
    let sel = select(&strings(&["v=NTA7516-1;bad", "v=NTA7516-1;bad"]));
    assert!(matches!(sel, Selection::Malformed { .. }), "{sel:?}");
}

#[test]
fn select_equivalent_texts_are_not_a_conflict() {
    let a = VALID;
    let b = "v=NTA7516-1; startdate:2024-01; enddate=2025-12; PROVIDER=X; ntamx=10 MX.example.nl.;";
    assert_eq!(
        select(&strings(&[a, SPF, b])),
        Selection::Found(parse(a).unwrap())
    );
}

#[test]
fn select_conflicting() {
    let other = "v=NTA7516-1;startdate=2024-01;enddate=2026-12;provider=X;ntamx=10 mx.example.nl";
    assert_eq!(
        select(&strings(&[VALID, SPF, other, VALID])),
        Selection::Conflicting {
            records: strings(&[VALID, other])
        }
    );
    // A broken second claim still leaves the domain without one clear statement.
    let broken = "v=NTA7516-1;startdate=2024-13";
    assert_eq!(
        select(&strings(&[VALID, broken])),
        Selection::Conflicting {
            records: strings(&[VALID, broken])
        }
    );
    assert_eq!(
        select(&strings(&[broken, VALID])),
        Selection::Conflicting {
            records: strings(&[broken, VALID])
        }
    );
    // Same content in the two syntaxes is still two different statements.
    let legacy = "v=NTA7516;version:2024-01;expire:2025-12;provider:X;ntamx:10 mx.example.nl";
    assert!(matches!(
        select(&strings(&[VALID, legacy])),
        Selection::Conflicting { .. }
    ));
}

#[test]
fn select_malformed() {
    let bad = "v=NTA7516-1;startdate=2024-01;enddate=2025-12";
    assert_eq!(
        select(&strings(&[SPF, bad])),
        Selection::Malformed {
            raw: bad.to_string(),
            error: RecordError::MissingField { field: "provider" },
        }
    );
}

#[test]
fn select_examines_a_bounded_number_of_records() {
    let mut txts: Vec<String> = (0..MAX_TXT_RECORDS - 1)
        .map(|i| format!("verification-{i}={}", "x".repeat(200)))
        .collect();
    txts.push(VALID.to_string());
    // Beyond the bound: neither this conflict nor the flood behind it is looked at.
    txts.push("v=NTA7516-1;startdate=1999-01;enddate=1999-02;provider=Y".to_string());
    txts.extend((0..100_000).map(|i| format!("v=NTA7516-1;n={i}")));
    // How long these take is measured in `cargo bench --bench adversarial`.
    assert_eq!(select(&txts), Selection::Found(parse(VALID).unwrap()));

    // A thousand distinct candidates that all parse the same: linear, not pairwise.
    let txts: Vec<String> = (0..MAX_TXT_RECORDS)
        .map(|i| format!("{VALID};note={i}"))
        .collect();
    assert!(matches!(select(&txts), Selection::Found(_)));
}
