//! Loop and auto-reply detection (SPEC §7). An automatic message never opens a ticket and
//! never causes a message back; it may join a ticket it threads to, as a note.

use super::parse::Parsed;

/// The value of the `X-Loop` field Postern puts on its own notifications.
pub fn marker(hostname: &str) -> String {
    format!("postern@{hostname}")
}

/// Why `parsed` (sent with envelope sender `mail_from`) is automatic mail, if it is.
pub fn automatic(parsed: &Parsed, mail_from: &str, hostname: &str) -> Option<String> {
    if mail_from.is_empty() {
        return Some("null envelope sender".into());
    }
    let ours = marker(hostname);
    parsed.loop_fields.iter().find_map(|(name, value)| {
        let value_lc = value.to_ascii_lowercase();
        let automatic = match name.as_str() {
            "auto-submitted" => value_lc.split(';').next().is_some_and(|v| v.trim() != "no"),
            "precedence" => matches!(value_lc.trim(), "bulk" | "junk" | "list"),
            "x-auto-response-suppress" => true,
            "x-loop" => value_lc.trim() == ours,
            _ => false,
        };
        automatic.then(|| format!("{name}: {value}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(fields: &[(&str, &str)]) -> Parsed {
        Parsed {
            loop_fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..Parsed::default()
        }
    }

    #[test]
    fn each_rule_of_the_spec_marks_automatic_mail() {
        let host = "gw.example";
        assert!(automatic(&with(&[]), "", host).is_some());
        assert!(automatic(&with(&[("auto-submitted", "auto-replied")]), "a@b", host).is_some());
        assert!(automatic(
            &with(&[("auto-submitted", "auto-generated; x=y")]),
            "a@b",
            host
        )
        .is_some());
        assert!(automatic(&with(&[("auto-submitted", "No")]), "a@b", host).is_none());
        for p in ["bulk", "junk", "List"] {
            assert!(
                automatic(&with(&[("precedence", p)]), "a@b", host).is_some(),
                "{p}"
            );
        }
        assert!(automatic(&with(&[("precedence", "first-class")]), "a@b", host).is_none());
        assert!(automatic(&with(&[("x-auto-response-suppress", "All")]), "a@b", host).is_some());
        assert!(automatic(&with(&[("x-loop", "postern@gw.example")]), "a@b", host).is_some());
        assert!(automatic(&with(&[("x-loop", "someone-else")]), "a@b", host).is_none());
        assert!(automatic(&with(&[]), "a@b", host).is_none());
    }
}
