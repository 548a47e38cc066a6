//! Structural pass over the parsed document: unknown sections and keys, wrong types.
//!
//! serde stops at the first problem, but an operator should see every problem in one run.
//! So each key is first tried on its own against the raw struct of its section (a one-key
//! table deserialized into e.g. `RawServer`); a key that fails is reported with serde's
//! message ("unknown field `x`, expected one of ...", "invalid type: integer `1`, expected a
//! boolean") and removed. What survives deserializes in one go. The raw structs stay the
//! only schema: nothing here lists key names or types.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer};

use super::error::Report;
use super::raw::{
    RawAudit, RawConfig, RawDkim, RawDns, RawDomains, RawFooter, RawInbound, RawOutbound,
    RawPolicy, RawPortal, RawPortalBranding, RawPortalSms, RawSenderRule, RawServer,
};

type Value<'i> = Spanned<DeValue<'i>>;

/// Removes every unknown or mistyped entry from `root`, reporting each.
pub(crate) fn check_document(root: &mut DeTable<'_>, report: &mut Report<'_>) {
    let names: Vec<Spanned<String>> = root
        .keys()
        .map(|k| Spanned::new(k.span(), k.get_ref().to_string()))
        .collect();
    for name in names {
        let Some(value) = root.get_mut(name.get_ref().as_str()) else {
            continue;
        };
        let name_span = name.span();
        let name = name.into_inner();
        let keep = match name.as_str() {
            "server" => check_table::<RawServer>(value, &name, report),
            "dns" => check_table::<RawDns>(value, &name, report),
            "domains" => check_table::<RawDomains>(value, &name, report),
            "outbound" => check_table::<RawOutbound>(value, &name, report),
            "policy" => check_policy(value, report),
            "dkim" => check_array_of_tables::<RawDkim>(value, &name, report),
            "footer" => check_table::<RawFooter>(value, &name, report),
            "audit" => check_table::<RawAudit>(value, &name, report),
            "inbound" => check_table::<RawInbound>(value, &name, report),
            "portal" => check_portal(value, report),
            // Not a section we know: let serde word the error (it lists the sections).
            _ => try_one::<RawConfig>(&name, &name_span, value, "", &(0..0), report),
        };
        if !keep {
            root.remove(name.as_str());
        }
    }
}

/// `[policy]` holds the array of tables `[[policy.senders]]`, whose entries are checked one
/// by one so that a problem in one rule does not hide problems in the next.
fn check_policy(value: &mut Value<'_>, report: &mut Report<'_>) -> bool {
    if !expect_table(value, "policy", report) {
        return false;
    }
    let span = value.span();
    let DeValue::Table(table) = value.get_mut() else {
        return false;
    };
    let senders = table.remove_entry("senders");
    let keep = try_entries::<RawPolicy>(table, "policy", &span, report);
    if let Some((key, mut senders)) = senders
        && check_array_of_tables::<RawSenderRule>(&mut senders, "policy.senders", report)
    {
        table.insert(key, senders);
    }
    keep
}

/// `[portal]` holds the tables `[portal.sms]` and `[portal.branding]`, each checked on its
/// own like `[[policy.senders]]`.
fn check_portal(value: &mut Value<'_>, report: &mut Report<'_>) -> bool {
    if !expect_table(value, "portal", report) {
        return false;
    }
    let span = value.span();
    let DeValue::Table(table) = value.get_mut() else {
        return false;
    };
    let sms = table.remove_entry("sms");
    let branding = table.remove_entry("branding");
    let keep = try_entries::<RawPortal>(table, "portal", &span, report);
    if let Some((key, mut sms)) = sms
        && check_table::<RawPortalSms>(&mut sms, "portal.sms", report)
    {
        table.insert(key, sms);
    }
    if let Some((key, mut branding)) = branding
        && check_table::<RawPortalBranding>(&mut branding, "portal.branding", report)
    {
        table.insert(key, branding);
    }
    keep
}

/// Checks a `[section]`; returns false if it is not a table at all.
fn check_table<T: DeserializeOwned>(
    value: &mut Value<'_>,
    path: &str,
    report: &mut Report<'_>,
) -> bool {
    if !expect_table(value, path, report) {
        return false;
    }
    let span = value.span();
    match value.get_mut() {
        DeValue::Table(table) => try_entries::<T>(table, path, &span, report),
        _ => false,
    }
}

fn expect_table(value: &Value<'_>, path: &str, report: &mut Report<'_>) -> bool {
    if value.get_ref().is_table() {
        return true;
    }
    report.error(
        path,
        &value.span(),
        format!(
            "expected a table (a [{path}] section), found {}",
            describe(value.get_ref())
        ),
    );
    false
}

/// Checks `[[path]]`: every element must be a table and is checked on its own.
fn check_array_of_tables<T: DeserializeOwned>(
    value: &mut Value<'_>,
    path: &str,
    report: &mut Report<'_>,
) -> bool {
    let span = value.span();
    let DeValue::Array(items) = value.get_mut() else {
        report.error(
            path,
            &span,
            format!(
                "expected an array of tables (one [[{path}]] section per entry), found {}",
                describe(value.get_ref())
            ),
        );
        return false;
    };
    let mut all_tables = true;
    for (i, item) in items.iter_mut().enumerate() {
        let item_path = format!("{path}[{i}]");
        let item_span = item.span();
        match item.get_mut() {
            DeValue::Table(table) => {
                try_entries::<T>(table, &item_path, &item_span, report);
            }
            other => {
                report.error(
                    item_path,
                    &item_span,
                    format!("expected a table, found {}", describe(other)),
                );
                all_tables = false;
            }
        }
    }
    // Elements cannot be removed from a `DeArray` in place; dropping the whole key is enough
    // to keep the final deserialization from failing, and each bad element was reported.
    all_tables
}

/// Tries each entry of `table` alone against `T`, removing and reporting those that fail.
/// Always returns true: the table itself is fine once its bad entries are gone.
fn try_entries<T: DeserializeOwned>(
    table: &mut DeTable<'_>,
    path: &str,
    table_span: &Range<usize>,
    report: &mut Report<'_>,
) -> bool {
    let bad: Vec<String> = table
        .iter()
        .filter(|(key, value)| {
            !try_one::<T>(key.get_ref(), &key.span(), value, path, table_span, report)
        })
        .map(|(key, _)| key.get_ref().to_string())
        .collect();
    for key in bad {
        table.remove(key.as_str());
    }
    true
}

/// Deserializes `T` from a table holding only `key = value`; reports and returns false if
/// that fails.
fn try_one<T: DeserializeOwned>(
    key: &str,
    key_span: &Range<usize>,
    value: &Value<'_>,
    path: &str,
    table_span: &Range<usize>,
    report: &mut Report<'_>,
) -> bool {
    let mut one = DeTable::new();
    one.insert(
        Spanned::new(key_span.clone(), key.to_string().into()),
        value.clone(),
    );
    let Err(e) = T::deserialize(Deserializer::from(Spanned::new(table_span.clone(), one))) else {
        return true;
    };
    let error_span = e.span().unwrap_or_else(|| key_span.clone());
    let mut key_path = join(path, key);
    let mut culprit = value.get_ref();
    if let Some(i) = element_at(culprit, error_span.start) {
        key_path = format!("{key_path}[{i}]");
        culprit = culprit
            .as_array()
            .map_or(culprit, |items| items[i].get_ref());
    }
    // serde sees a TOML date/time as a map ("invalid type: map, expected a string"); no key
    // here takes a date/time, so say what happened instead.
    let message = if culprit.is_datetime() {
        "a date/time is not valid here; quote the value if it is meant as text".to_string()
    } else {
        e.message().to_string()
    };
    report.error(key_path, &error_span, message);
    false
}

/// Index of the array element at byte `offset`, for keys like `domains.own[2]`.
fn element_at(value: &DeValue<'_>, offset: usize) -> Option<usize> {
    let items = value.as_array()?;
    items.iter().position(|item| item.span().contains(&offset))
}

/// `path.key`, quoting keys that are not bare TOML keys so the path stays unambiguous.
pub(crate) fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

fn describe(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
