//! A minimal DER reader: just enough to name a key's type and size for error messages.
//! The crypto backend (aws-lc-rs) does the real parsing, and refuses what it cannot use
//! with only "TooSmall" or "InvalidEncoding"; when this reader gives up, the backend's
//! verdict stands.

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// `[0]` explicit, constructed: the curve parameters in a SEC1 ECPrivateKey.
const TAG_CONTEXT_0: u8 = 0xa0;

// Algorithm OIDs (DER content bytes).
pub(super) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]; // 1.2.840.113549.1.1.1
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a]; // 1.2.840.113549.1.1.10
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]; // 1.2.840.10040.4.1
const OID_X25519: &[u8] = &[0x2b, 0x65, 0x6e]; // 1.3.101.110
const OID_X448: &[u8] = &[0x2b, 0x65, 0x6f]; // 1.3.101.111
pub(super) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71]; // 1.3.101.113

/// Reads one TLV: `(tag, content, rest)`.
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Reads one TLV that must have `tag`: `(content, rest)`.
fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = der_read(input)?;
    (t == tag).then_some((content, rest))
}

/// Bit length of a DER INTEGER's (unsigned) value.
fn integer_bits(content: &[u8]) -> usize {
    let significant: &[u8] = match content.iter().position(|&b| b != 0) {
        Some(i) => &content[i..],
        None => return 0,
    };
    (significant.len() - 1) * 8 + (8 - significant[0].leading_zeros() as usize)
}

/// RSAPrivateKey (RFC 8017 A.1.2): SEQUENCE { version INTEGER, modulus INTEGER, ... }.
pub(super) fn rsa_private_key_bits(der: &[u8]) -> Option<usize> {
    let (seq, _) = der_expect(der, TAG_SEQUENCE)?;
    let (_version, rest) = der_expect(seq, TAG_INTEGER)?;
    let (modulus, _) = der_expect(rest, TAG_INTEGER)?;
    Some(integer_bits(modulus))
}

/// RSAPublicKey (RFC 8017 A.1.1): SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
pub(super) fn rsa_public_key_bits(der: &[u8]) -> Option<usize> {
    let (seq, _) = der_expect(der, TAG_SEQUENCE)?;
    let (modulus, _) = der_expect(seq, TAG_INTEGER)?;
    Some(integer_bits(modulus))
}

pub(super) enum Pkcs8Kind {
    Rsa {
        bits: Option<usize>,
    },
    Ed25519,
    /// A key type we do not sign with, described for the operator ("an EC P-256 key").
    Other(String),
}

/// PrivateKeyInfo (RFC 5208): SEQUENCE { version, AlgorithmIdentifier, OCTET STRING key, ... }.
pub(super) fn pkcs8_kind(der: &[u8]) -> Option<Pkcs8Kind> {
    let (info, _) = der_expect(der, TAG_SEQUENCE)?;
    let (_version, rest) = der_expect(info, TAG_INTEGER)?;
    let (alg, rest) = der_expect(rest, TAG_SEQUENCE)?;
    let (oid, params) = der_expect(alg, TAG_OID)?;
    let kind = match oid {
        OID_RSA => {
            let bits = der_expect(rest, TAG_OCTET_STRING)
                .and_then(|(private_key, _)| rsa_private_key_bits(private_key));
            Pkcs8Kind::Rsa { bits }
        }
        OID_ED25519 => Pkcs8Kind::Ed25519,
        OID_EC => {
            let curve = der_expect(params, TAG_OID)
                .map(|(c, _)| curve_name(c))
                .unwrap_or_else(|| "(unknown curve)".into());
            Pkcs8Kind::Other(format!("an EC {curve} key"))
        }
        OID_ED448 => Pkcs8Kind::Other("an Ed448 key (DKIM knows only Ed25519)".into()),
        OID_X25519 | OID_X448 => {
            Pkcs8Kind::Other("a key-agreement (X25519/X448) key, which cannot sign".into())
        }
        OID_RSA_PSS => Pkcs8Kind::Other(
            "an RSA-PSS-only key (DKIM signs with RSA PKCS#1 v1.5; generate a plain RSA key)"
                .into(),
        ),
        OID_DSA => Pkcs8Kind::Other("a DSA key".into()),
        other => Pkcs8Kind::Other(format!(
            "a key of an unknown type (algorithm OID {})",
            oid_string(other)
        )),
    };
    Some(kind)
}

/// ECPrivateKey (RFC 5915): SEQUENCE { version, OCTET STRING, [0] parameters OID, ... }.
pub(super) fn sec1_curve(der: &[u8]) -> String {
    let curve = || {
        let (seq, _) = der_expect(der, TAG_SEQUENCE)?;
        let (_version, rest) = der_expect(seq, TAG_INTEGER)?;
        let (_key, rest) = der_expect(rest, TAG_OCTET_STRING)?;
        let (params, _) = der_expect(rest, TAG_CONTEXT_0)?;
        let (oid, _) = der_expect(params, TAG_OID)?;
        Some(curve_name(oid))
    };
    curve().unwrap_or_else(|| "(unknown curve)".into())
}

fn curve_name(oid: &[u8]) -> String {
    match oid {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => "P-256".into(),
        [0x2b, 0x81, 0x04, 0x00, 0x22] => "P-384".into(),
        [0x2b, 0x81, 0x04, 0x00, 0x23] => "P-521".into(),
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => "secp256k1".into(),
        other => format!("(curve OID {})", oid_string(other)),
    }
}

/// Dotted form of an OID, for messages about unknown key types.
fn oid_string(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_strings() {
        assert_eq!(oid_string(OID_RSA), "1.2.840.113549.1.1.1");
        assert_eq!(oid_string(OID_ED25519), "1.3.101.112");
        assert_eq!(oid_string(&[0x2b, 0x81, 0x04, 0x00, 0x22]), "1.3.132.0.34");
    }

    #[test]
    fn der_long_lengths() {
        let content = vec![7u8; 300];
        let mut out = vec![TAG_OCTET_STRING, 0x82, 0x01, 0x2c];
        out.extend_from_slice(&content);
        let (tag, got, rest) = der_read(&out).unwrap();
        assert_eq!((tag, got, rest.len()), (TAG_OCTET_STRING, &content[..], 0));
        // Truncated input is refused, not read past.
        assert!(der_read(&out[..out.len() - 1]).is_none());
    }

    #[test]
    fn integer_bit_lengths() {
        assert_eq!(integer_bits(&[0x00, 0x80]), 8);
        assert_eq!(integer_bits(&[0x01, 0x00]), 9);
        assert_eq!(integer_bits(&[0x00]), 0);
    }
}
