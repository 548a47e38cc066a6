//! Test keys whose public halves the DNS test bed publishes (test use only).

/// The Ed25519 key whose public half the bed publishes at `ed._domainkey` of
/// `selfcheck.test.` and `expiring.test.` (made with `dkim-keygen`; test use only).
pub const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIMpnurMD31LL6Q5XCPxLwqBXkFrf8O/BM8X0M2eUjk+p
-----END PRIVATE KEY-----
";
