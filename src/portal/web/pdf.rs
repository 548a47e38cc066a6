//! The whole message as a PDF the recipient keeps (NTA 7516 6.1.18: an own copy in a
//! readable form): headers, body text and attachment names, as real text (searchable,
//! copyable, read by screen readers and `pdftotext`), on A4 pages.
//!
//! Written directly (PDF 1.4, ISO 32000-1 structure: objects, one xref table, trailer)
//! with the standard Helvetica fonts, which every reader has built in: no font files, no
//! layout engine, a few hundred bytes of code paths to review. Text outside Windows-1252
//! (the standard fonts' encoding) is shown as `?`.

use std::fmt::Write as _;

const PAGE_WIDTH: u32 = 595; // A4 in points
const PAGE_HEIGHT: u32 = 842;
const MARGIN: u32 = 56;
const FONT_SIZE: u32 = 10;
const LEADING: u32 = 14;
/// Characters per line: Helvetica averages about half an em, so 10 pt text fits
/// comfortably in the 483 pt line at this count.
pub const WRAP_AT: usize = 88;
const LINES_PER_PAGE: usize = ((PAGE_HEIGHT - 2 * MARGIN) / LEADING) as usize;

/// One line of output and whether it is a label (bold).
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
    pub bold: bool,
}

impl Line {
    pub fn plain(text: impl Into<String>) -> Line {
        Line {
            text: text.into(),
            bold: false,
        }
    }
    pub fn bold(text: impl Into<String>) -> Line {
        Line {
            text: text.into(),
            bold: true,
        }
    }
}

/// Wraps `text` at word boundaries to at most [`WRAP_AT`] characters per line (a word
/// longer than that is cut).
pub fn wrap(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        let mut len = 0;
        for word in para.split_whitespace() {
            let mut word: Vec<char> = word.chars().collect();
            while word.len() > WRAP_AT {
                if len > 0 {
                    out.push(std::mem::take(&mut line));
                    len = 0;
                }
                out.push(word.drain(..WRAP_AT).collect());
            }
            let w = word.len();
            if len > 0 && len + 1 + w > WRAP_AT {
                out.push(std::mem::take(&mut line));
                len = 0;
            }
            if len > 0 {
                line.push(' ');
                len += 1;
            }
            line.extend(word);
            len += w;
        }
        out.push(line);
    }
    out
}

/// Windows-1252 byte for a character, `?` when it has none.
fn cp1252(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        '„' => 0x84,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '\t' => b' ',
        _ => b'?',
    }
}

/// A PDF literal string `( ... )` with `\`, `(` and `)` escaped and bytes above 0x7e as
/// octal escapes (the file stays ASCII).
fn literal(text: &str, out: &mut Vec<u8>) {
    out.push(b'(');
    for c in text.chars() {
        match cp1252(c) {
            b @ (b'\\' | b'(' | b')') => {
                out.push(b'\\');
                out.push(b);
            }
            b @ 0x20..=0x7e => out.push(b),
            b => out.extend(format!("\\{b:03o}").bytes()),
        }
    }
    out.push(b')');
}

/// Renders the lines, paged, into a complete PDF file.
pub fn render(lines: &[Line]) -> Vec<u8> {
    let pages: Vec<&[Line]> = if lines.is_empty() {
        vec![&[][..]]
    } else {
        lines.chunks(LINES_PER_PAGE).collect()
    };
    // Objects: 1 catalog, 2 page tree, 3 Helvetica, 4 Helvetica-Bold, then per page a
    // page object and its content stream.
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let kids: String = (0..pages.len())
        .map(|i| format!("{} 0 R", 5 + 2 * i))
        .collect::<Vec<_>>()
        .join(" ");
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(format!("<< /Type /Pages /Kids [{kids}] /Count {} >>", pages.len()).into_bytes());
    for font in ["Helvetica", "Helvetica-Bold"] {
        objects.push(
            format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{font} /Encoding /WinAnsiEncoding >>"
            )
            .into_bytes(),
        );
    }
    for (i, page) in pages.iter().enumerate() {
        let mut content = Vec::new();
        let top = PAGE_HEIGHT - MARGIN - FONT_SIZE;
        content.extend(format!("BT\n{LEADING} TL\n{MARGIN} {top} Td\n").bytes());
        let mut bold = None;
        for line in page.iter() {
            if bold != Some(line.bold) {
                let f = if line.bold { "F2" } else { "F1" };
                content.extend(format!("/{f} {FONT_SIZE} Tf\n").bytes());
                bold = Some(line.bold);
            }
            literal(&line.text, &mut content);
            content.extend(b" Tj T*\n");
        }
        content.extend(b"ET\n");
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                6 + 2 * i
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend(content);
        stream.extend(b"endstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).bytes());
        out.extend(obj);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(table, "{o:010} 00000 n ");
    }
    let _ = write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend(table.bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `pdftotext` output of a PDF (poppler-utils), or `None` when it is not installed
    /// and the caller may skip (the browser suite requires it).
    pub(crate) fn pdftotext(pdf: &[u8]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pdf");
        std::fs::write(&path, pdf).unwrap();
        let out = std::process::Command::new("pdftotext")
            .arg(&path)
            .arg("-")
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn wraps_at_words() {
        let text = "een twee drie ".repeat(30);
        let lines = wrap(&text);
        assert!(lines.len() > 3);
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP_AT));
        assert_eq!(lines.join(" ").split_whitespace().count(), 90);
        let long = "x".repeat(200);
        assert_eq!(
            wrap(&long).iter().map(|l| l.len()).collect::<Vec<_>>(),
            vec![88, 88, 24]
        );
        assert_eq!(wrap("a\n\nb"), vec!["a", "", "b"]);
    }

    #[test]
    fn escapes_and_encodes() {
        let mut out = Vec::new();
        literal("a(b)\\ é€ ✓", &mut out);
        assert_eq!(out, b"(a\\(b\\)\\\\ \\351\\200 ?)".to_vec());
    }

    #[test]
    fn structure_and_text() {
        let mut lines = vec![
            Line::bold("Van: Dr. A"),
            Line::plain("Onderwerp: Uitslag (één)"),
        ];
        lines.extend((0..150).map(|i| Line::plain(format!("regel {i}"))));
        let pdf = render(&lines);
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let s = String::from_utf8_lossy(&pdf);
        assert!(s.contains("/Count 3"), "152 lines make three pages");
        // startxref points at the table, and the table at the objects.
        let start: usize = s
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[start..].starts_with(b"xref"));
        let table = String::from_utf8_lossy(&pdf[start..]).into_owned();
        let first: usize = table.lines().nth(3).unwrap()[..10].parse().unwrap();
        assert!(pdf[first..].starts_with(b"1 0 obj"));
        if let Some(text) = pdftotext(&pdf) {
            assert!(text.contains("Van: Dr. A"), "{text}");
            assert!(text.contains("Onderwerp: Uitslag (één)"), "{text}");
            assert!(text.contains("regel 149"), "{text}");
        }
    }
}
