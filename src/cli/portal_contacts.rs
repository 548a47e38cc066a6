//! `portal contacts import|add|remove|list`: the portal's address book (a mobile number
//! per recipient address), so that mail to a known recipient needs no number in it.
//! Numbers are normalised to E.164 and must be mobile numbers (`portal::phone`); an
//! import with any bad row imports nothing and names every bad row by its line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{ToolExit, usage_error};
use crate::portal::phone::Phone;
use crate::portal::store::{Store, receipt_address};

/// Rows one import may hold (an address book, not a bulk load).
pub const MAX_IMPORT_ROWS: usize = 100_000;

#[derive(Debug, clap::Subcommand)]
pub enum ContactsCommand {
    /// Import a CSV file of `address,number` rows (an optional header row `address,number`,
    /// `#` comments). Any bad row: nothing is imported and every bad row is named.
    Import {
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
    },
    /// Add or replace one address's number.
    Add {
        address: String,
        /// E.164 (+31612345678) or Dutch national (06-12345678); must be a mobile number.
        number: String,
    },
    /// Remove one address (exit 1 when it was not in the book).
    Remove { address: String },
    /// Every address with its number.
    List,
}

/// One valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub address: String,
    pub phone: Phone,
}

/// An address as the book keeps it: one plain address, lower case.
fn address(s: &str) -> Result<String, String> {
    receipt_address(s.trim())
        .map(|a| a.to_ascii_lowercase())
        .ok_or_else(|| format!("{:?} is not one e-mail address", s.trim()))
}

/// Parses an import file: the rows, or every problem as `line N: why`.
pub fn parse_csv(data: &[u8]) -> Result<Vec<Row>, Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut rows: Vec<(u64, Row)> = Vec::new();
    let mut problems = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = rec.position().map_or(i as u64 + 1, |p| p.line());
        if i == 0
            && rec
                .get(0)
                .is_some_and(|f| f.eq_ignore_ascii_case("address"))
        {
            continue;
        }
        if rows.len() + problems.len() >= MAX_IMPORT_ROWS {
            problems.push(format!("line {line}: more than {MAX_IMPORT_ROWS} rows"));
            break;
        }
        if rec.len() != 2 {
            problems.push(format!(
                "line {line}: {} fields; expected 2 (address,number)",
                rec.len()
            ));
            continue;
        }
        let a = match address(&rec[0]) {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let phone = match Phone::parse(&rec[1]) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("line {line}: {:?}: {e}", &rec[1]));
                continue;
            }
        };
        if let Some((first, _)) = rows.iter().find(|(_, r)| r.address == a) {
            problems.push(format!("line {line}: {a} is also on line {first}"));
            continue;
        }
        rows.push((line, Row { address: a, phone }));
    }
    if problems.is_empty() {
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    } else {
        Err(problems)
    }
}

fn store_err(e: crate::portal::store::StoreError) -> ExitCode {
    usage_error(format_args!("portal store: {e}"))
}

pub async fn run(cmd: ContactsCommand, config: Option<&Path>) -> ToolExit {
    // A bad file or argument is reported before the store is opened.
    let todo: Vec<Row> = match &cmd {
        ContactsCommand::Import { file } => {
            let data = std::fs::read(file)
                .map_err(|e| usage_error(format_args!("{}: {e}", file.display())))?;
            parse_csv(&data).map_err(|problems| {
                for p in &problems {
                    eprintln!("{}: {p}", file.display());
                }
                usage_error(format_args!(
                    "portal contacts import: {} bad row(s); nothing imported",
                    problems.len()
                ))
            })?
        }
        ContactsCommand::Add { address: a, number } => vec![Row {
            address: address(a).map_err(usage_error)?,
            phone: Phone::parse(number)
                .map_err(|e| usage_error(format_args!("{number:?}: {e}")))?,
        }],
        _ => Vec::new(),
    };
    let store: Store = super::portal_admin::open(config).await?;
    let done = match cmd {
        ContactsCommand::Import { .. } | ContactsCommand::Add { .. } => {
            for r in &todo {
                store
                    .contact_set(&r.address, &r.phone)
                    .await
                    .map_err(store_err)?;
            }
            println!("{} contact(s) stored", todo.len());
            ExitCode::SUCCESS
        }
        ContactsCommand::Remove { address: a } => {
            let a = address(&a).map_err(usage_error)?;
            if store.contact_remove(&a).await.map_err(store_err)? {
                println!("removed {a}");
                ExitCode::SUCCESS
            } else {
                eprintln!("nta7516-milter: portal contacts remove: {a} is not in the book");
                ExitCode::from(super::portal_admin::NOT_FOUND)
            }
        }
        ContactsCommand::List => {
            for c in store.contacts().await.map_err(store_err)? {
                println!("{},{}", c.address, c.phone.e164());
            }
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_rows_normalised() {
        let rows = parse_csv(
            b"address,number\n# a comment\nPatient@Example.org, 06-1234 5678\n\
              \"b@example.org\",+31687654321\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].address, "patient@example.org");
        assert_eq!(rows[0].phone.e164(), "+31612345678");
    }

    #[test]
    fn every_bad_row_is_named_by_its_line() {
        let err = parse_csv(
            b"a@example.org,0612345678\n\
              not-an-address,0612345678\n\
              c@example.org,020-1234567\n\
              d@example.org\n\
              e@example.org,0612345678,extra\n\
              A@example.org,0687654321\n\
              f@example.org,hello\n\
              \"g@example.org,0612345678\n",
        )
        .unwrap_err();
        let joined = err.join("\n");
        for want in [
            "line 2: \"not-an-address\" is not one e-mail address",
            "line 3: \"020-1234567\": not a mobile number",
            "line 4: 1 fields",
            "line 5: 3 fields",
            "line 6: a@example.org is also on line 1",
            "line 7: \"hello\": not a phone number",
        ] {
            assert!(joined.contains(want), "{want} not in:\n{joined}");
        }
        assert!(!joined.contains("line 1:"), "{joined}");
    }
}
