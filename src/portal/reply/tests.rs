use std::sync::Arc;
use std::time::Duration;

use mail_parser::MimeHeaders;

use super::*;
use crate::audit::Auditor;
use crate::config::portal::StoreLocation;
use crate::message::portal_mark::MarkKey;
use crate::portal::crypto::MasterKey;
use crate::portal::notice::Notifier;
use crate::portal::store::Store;

async fn senders(dir: &std::path::Path) -> SenderMail {
    let store = Store::open(
        &StoreLocation::Sqlite(dir.join("p.db")),
        Arc::new(MasterKey::from_bytes(&[5; 32])),
    )
    .await
    .unwrap();
    SenderMail {
        store,
        notifier: Notifier {
            submit: crate::portal::submit::Submit::Sendmail("/nonexistent/sendmail".into()),
            from: "portaal@zkh.example".into(),
            organisation: "Ziekenhuis".into(),
            mark: MarkKey::from_bytes(&[7; 32]).unwrap(),
            timeout: Duration::from_secs(5),
            text: Default::default(),
        },
        auditor: Arc::new(Auditor::open(Some(&dir.join("audit.log"))).unwrap()),
        public_url: "https://p.example".into(),
        own_domains: vec!["zkh.example".into()],
        number_wait: Some(Duration::from_secs(3600)),
    }
}

fn header<'a>(m: &'a mail_parser::Message<'a>, name: &str) -> String {
    m.header_raw(name).unwrap_or_default().trim().to_string()
}

#[tokio::test]
async fn a_reply_is_mime_threaded_marked_and_only_to_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let s = senders(dir.path()).await;
    let original = Original::parse(
        b"From: Dr. A <arts@zkh.example>\r\nSubject: Uitslag\r\nMessage-ID: <o1@zkh.example>\r\n\
          References: <r0@zkh.example>\r\n\r\nbody\r\n",
    );
    assert_eq!(original.message_id.as_deref(), Some("o1@zkh.example"));
    let files = [
        Upload {
            name: "C:\\fakepath\\foto \"1\".png".into(),
            content_type: "image/png; x=\r\nBcc: evil@x".into(),
            data: vec![0x89, b'P', b'N', b'G', 0, 1, 2],
        },
        Upload {
            name: "../../etc/passwd".into(),
            content_type: "text/plain".into(),
            data: b"tekst\r\nBcc: evil@example.org\r\n".to_vec(),
        },
    ];
    let mail = s.build_reply(
        "p@patient.example",
        "arts@zkh.example",
        &original,
        "Dank u.\r\nBcc: evil@example.org\r\n\r\nTo: evil@example.org",
        &files,
        "<new1@zkh.example>",
        1_800_000_000,
    );
    let m = mail_parser::MessageParser::default().parse(&mail).unwrap();
    // Exactly one To (the sender), From the portal with the recipient's address as name,
    // Reply-To the recipient, threaded; no Bcc/Cc header anywhere at the top.
    assert_eq!(header(&m, "To"), "<arts@zkh.example>");
    assert!(header(&m, "From").contains("p@patient.example via Ziekenhuis"));
    assert!(header(&m, "From").contains("<portaal@zkh.example>"));
    assert_eq!(header(&m, "Reply-To"), "<p@patient.example>");
    assert_eq!(header(&m, "In-Reply-To"), "<o1@zkh.example>");
    assert!(header(&m, "References").contains("<r0@zkh.example>"));
    assert!(header(&m, "References").contains("<o1@zkh.example>"));
    assert_eq!(m.subject(), Some("Re: Uitslag"));
    for h in ["Bcc", "Cc"] {
        assert!(m.header_raw(h).is_none(), "{h}");
    }
    // The text is the body; the files are attachments with clean names and types.
    assert!(m.body_text(0).unwrap().contains("Bcc: evil@example.org"));
    let names: Vec<String> = m
        .attachments()
        .map(|a| a.attachment_name().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["foto 1.png", "passwd"]);
    // Parameters of the browser's type are dropped (with whatever they tried to add).
    let ct = m.attachments().next().unwrap().content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("image", Some("png")));
    assert!(ct.attribute("x").is_none());
    // The mark verifies over what was built (the milter's check).
    let mark = header(&m, HEADER_PORTAL_MARK);
    let split = mail.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(s.notifier.mark.verify(
        &mark,
        &Marked {
            recipients: &["arts@zkh.example".to_string()],
            message_id: &written(&mail, "Message-ID"),
            subject: &written(&mail, "Subject"),
            body: &mail[split..],
        }
    ));
    // Never to anyone but an own-domain sender.
    assert!(s.can_reply_to("arts@zkh.example"));
    assert!(s.can_reply_to("arts@afdeling.zkh.example"));
    for bad in [
        "",
        "arts@patient.example",
        "a@zkh.example.evil",
        "a@b@zkh.example",
        "x",
    ] {
        assert!(!s.can_reply_to(bad), "{bad}");
    }
}

#[test]
fn names_types_and_subjects() {
    assert_eq!(file_name("..."), "bijlage");
    assert_eq!(file_name("a/b\\c.pdf"), "c.pdf");
    assert_eq!(file_name(&"x".repeat(500)).len(), 120);
    assert_eq!(content_type("Application/PDF"), "application/pdf");
    assert_eq!(content_type("text/html; charset=x"), "text/html");
    assert_eq!(content_type("evil"), "application/octet-stream");
    assert_eq!(content_type("a/b\r\nX: y"), "application/octet-stream");
    assert_eq!(subject("Re: x"), "Re: x");
    assert_eq!(subject("x\r\nBcc: y"), "Re: x Bcc: y");
    assert_eq!(subject(""), "Re: Antwoord / Reply");
}
