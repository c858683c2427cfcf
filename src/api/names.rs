//! What names in requests may look like: domain names (the blocklist, `org_domains`, DKIM
//! signing domains) and DKIM selectors. Checks only; callers normalise (trim, lower-case)
//! first.

/// True if `name` is a dotted host name: labels of 1–63 letters, digits or hyphens, not
/// starting or ending with a hyphen, 253 octets at most. `unicode` also allows non-ASCII
/// letters (internationalised domains written as U-labels).
pub fn is_host_name(name: &str, unicode: bool) -> bool {
    let letter = |c: char| match unicode {
        true => c.is_alphanumeric(),
        false => c.is_ascii_alphanumeric(),
    };
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| letter(c) || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::is_host_name;

    #[test]
    fn host_names() {
        assert!(is_host_name("corp.example", false));
        assert!(is_host_name("s1", false));
        assert!(is_host_name("bücher.example", true));
        assert!(!is_host_name("bücher.example", false));
        for bad in [
            "",
            "a..b",
            "-a.b",
            "a-.b",
            "a_b.c",
            "a b",
            "a/b",
            &"x".repeat(64),
        ] {
            assert!(!is_host_name(bad, true), "{bad:?}");
        }
    }
}
