//! Output of `postern admin`: a JSON array as a table of chosen columns, a JSON object as
//! `key: value` lines, a DKIM key's record as a zone-file line. Columns are JSON pointers (`/scope/kind`); arrays of strings are
//! joined with commas, other nested values shown as compact JSON.

use serde_json::Value;

/// One cell's text.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(|v| !v.is_object()) => items
            .iter()
            .map(|v| cell(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// The rows of `items` under `columns` (JSON pointers), headed by their last segments.
pub fn table(items: &[Value], columns: &[&str]) -> String {
    let header: Vec<String> = columns
        .iter()
        .map(|c| c.rsplit('/').next().unwrap_or(c).to_uppercase())
        .collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| cell(item.pointer(c))).collect())
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&header);
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// An object as `key: value` lines, in the object's order.
pub fn record(object: &Value) -> String {
    match object.as_object() {
        Some(map) => map
            .iter()
            .map(|(key, value)| format!("{key}: {}\n", cell(Some(value))))
            .collect(),
        None => format!("{}\n", cell(Some(object))),
    }
}

/// The `dns` record of a DKIM key as a zone-file line: `name. IN TXT "…" "…"`, the value
/// cut into strings of at most 255 octets (it is ASCII).
pub fn zone(key: &Value) -> String {
    let name = cell(key.pointer("/dns/name"));
    let value = cell(key.pointer("/dns/value"));
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{name}. IN TXT {}\n", strings.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_join() {
        let items = [
            json!({"id": 1, "login": "alice", "roles": ["a", "b"], "scope": {"kind": "system"}}),
            json!({"id": 22, "login": "bo", "roles": [], "scope": null}),
        ];
        let out = table(&items, &["/id", "/login", "/roles", "/scope/kind"]);
        assert_eq!(
            out,
            "ID  LOGIN  ROLES  KIND\n1   alice  a,b    system\n22  bo            -\n"
        );
        assert_eq!(record(&json!({"id": 3, "ok": true})), "id: 3\nok: true\n");
    }

    #[test]
    fn zone_lines_split_long_values() {
        let value = format!("v=DKIM1; k=rsa; p={}", "A".repeat(300));
        let key =
            json!({"dns": {"name": "s._domainkey.example.com", "type": "TXT", "value": value}});
        let line = zone(&key);
        let (first, second) = value.split_at(255);
        assert_eq!(
            line,
            format!("s._domainkey.example.com. IN TXT \"{first}\" \"{second}\"\n")
        );
    }
}
