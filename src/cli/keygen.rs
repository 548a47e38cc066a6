//! `dkim-keygen`: a DKIM key pair for one domain and selector, the DNS record to publish and
//! the `[[dkim]]` entry to add (see `tools::keygen`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::domain::DomainName;
use crate::message::dkim::SigningKey;
use crate::tools::keygen::{self as tool, KeyKind, KeygenError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signing domain (DKIM d=), e.g. zkh.nl.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: String,
    /// The selector (DKIM s=): the DNS label(s) before ._domainkey, e.g. nta2025.
    #[arg(long, value_name = "SELECTOR")]
    pub selector: String,
    /// Key type.
    #[arg(long, value_name = "ALGORITHM", default_value = "rsa", value_parser = ["rsa", "ed25519"])]
    pub algorithm: String,
    /// RSA key size: 2048, 3072 or 4096 [default: 2048].
    #[arg(long, value_name = "BITS")]
    pub bits: Option<usize>,
    /// Where to write the private key (PKCS#8 PEM, mode 0600)
    /// [default: /etc/nta7516-milter/dkim/DOMAIN.SELECTOR.pem].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace FILE if it exists (the old key's DNS record then no longer matches).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> ExitCode {
    match keygen(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nta7516-milter: dkim-keygen: {e}");
            ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
        }
    }
}

fn keygen(args: &Args) -> Result<String, KeygenError> {
    let domain = DomainName::parse(&args.domain)
        .map_err(|e| KeygenError::Usage(format!("--domain {:?}: {e}", args.domain)))?;
    tool::check_selector(&domain, &args.selector)?;
    let kind = tool::key_kind(&args.algorithm, args.bits)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| tool::default_key_path(&domain, &args.selector));
    // The configuration wants an absolute key path; resolve a relative --out now.
    let out = std::path::absolute(&out).map_err(|e| KeygenError::Write {
        path: out.clone(),
        message: e.to_string(),
    })?;
    if !args.force && std::fs::symlink_metadata(&out).is_ok() {
        return Err(KeygenError::Exists(out));
    }
    let der = tool::generate_pkcs8(kind)?;
    let pem = tool::pem("PRIVATE KEY", &der);
    tool::install(&out, pem.as_bytes(), args.force, |p| {
        SigningKey::load(&domain, &args.selector, p)
    })?;
    // Loaded again from where the daemon will read it: the record printed is that file's.
    let key = SigningKey::load(&domain, &args.selector, &out).map_err(KeygenError::Unusable)?;

    let mut s = format!(
        "Wrote a new {kind} DKIM private key to {} (mode 0600).\n\n",
        out.display()
    );
    s.push_str("1. Publish this TXT record in the (DNSSEC-signed) zone of ");
    s.push_str(&format!("{domain}:\n\n{}\n\n", tool::dns_record(&key)));
    s.push_str("2. Add this to /etc/nta7516-milter/config.toml (or your --config file):\n\n");
    s.push_str(&tool::config_snippet(&domain, &args.selector, &out));
    s.push_str(
        "\n3. Make the key readable by the user the daemon runs as (chown that user; keep mode 0600),\n   \
         then run `nta7516-milter check-config` and reload the daemon (systemctl reload nta7516-milter).\n\
         4. Once the record is visible in DNS, `nta7516-milter self-check` compares it with the key file.\n",
    );
    if kind == KeyKind::Ed25519 {
        s.push_str(
            "\nNote: not every receiver verifies Ed25519 DKIM signatures (RFC 8463) yet; with a single\n\
             key per domain, RSA is the choice every receiver accepts.\n",
        );
    }
    Ok(s)
}
