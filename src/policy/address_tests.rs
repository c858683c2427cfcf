//! Tests of `policy::address`: the spellings an attacker (or an unlucky client) may use,
//! and the properties every canonical form must have.

use super::*;
use proptest::prelude::*;

#[test]
fn a_quoted_dot_atom_is_the_bare_dot_atom() {
    for spelling in [
        "ann@customer.example",
        "\"ann\"@customer.example",
        "<\"ann\"@customer.example>",
        "\"a\\nn\"@customer.example",
        "\"ANN\"@Customer.Example",
        "ann@customer.example.",
        "Ann Example <ann@CUSTOMER.example>",
        "\"Ann, Example\" <\"ann\"@customer.example>",
        "ann (the customer) @ customer (x) . example",
        " <@relay.example,@other.example:ann@customer.example> ",
        "ann@customer\u{3002}example",
    ] {
        assert_eq!(key(spelling), "ann@customer.example", "{spelling:?}");
    }
    assert_eq!(
        canonical("\"Ann\"@Customer.Example."),
        "Ann@customer.example"
    );
    assert_eq!(key("\"a\".\"b\"@x"), "a.b@x");
    assert_eq!(key("a.\"b\"@x"), "a.b@x");
}

#[test]
fn a_local_part_that_needs_quotes_keeps_them_and_compares_by_content() {
    assert_eq!(key("\"a b\"@x"), "\"a b\"@x");
    assert_eq!(key("\"a\\ b\"@x"), "\"a b\"@x");
    // mail-parser hands addresses over unquoted.
    assert_eq!(key("a b@x"), "\"a b\"@x");
    assert_eq!(key("\"a@b\"@x"), "\"a@b\"@x");
    assert_eq!(Address::parse("\"a@b\"@x").unwrap().domain(), "x");
    assert_eq!(key("\"a\\\"b\"@x"), "\"a\\\"b\"@x");
    assert_eq!(key("\"a.\"@x"), "\"a.\"@x");
    assert_eq!(key("a.@x"), "\"a.\"@x");
    assert_ne!(key("\"a b\"@x"), key("ab@x"));
    assert_ne!(key("\"a.b\"@x"), key("\"a\\.b\"@y"));
}

#[test]
fn empty_and_odd_inputs_are_never_confused_with_real_addresses() {
    assert_eq!(key(""), "");
    assert_eq!(key("<>"), "");
    assert_eq!(key("  Admin "), "admin");
    assert_eq!(key("\"\"@x"), "\"\"@x");
    assert_eq!(key("@x"), "\"\"@x");
    assert!(Address::parse("a@").is_none());
    assert!(Address::parse("a@.").is_none());
    assert_ne!(key("\"\"@x"), key("a@x"));
    // Found by the fixed-point property: an escaped CR, white space in a broken literal.
    assert_eq!(key("\"\\\r\"@0"), "\"\"@0");
    assert_eq!(key(&key("@[\t.")), key("@[\t."));
    assert_eq!(key(&key("@(\r.")), key("@(\r."));
    // An unterminated quote or comment is compared as written, not read past.
    assert_ne!(key("\"ann@x"), key("ann@x"));
    assert_ne!(key("ann(@x"), key("ann@x"));
}

#[test]
fn domains_compare_in_a_label_form() {
    assert_eq!(key("Ann@BÜCHER.example"), "ann@xn--bcher-kva.example");
    assert_eq!(
        key("ann@xn--bcher-kva.example."),
        "ann@xn--bcher-kva.example"
    );
    // The plain path (an A-label, valid or not) agrees with the general one.
    for text in [
        "Ann@XN--BCHER-KVA.Example",
        "a@xn--Bcher-kva.example",
        "a@xn--zz.example",
    ] {
        let general = Address::parse(text).unwrap().key();
        assert_eq!(plain_key(text), Some(general), "{text}");
    }
    assert_eq!(domain_key(" Bücher.Example. "), "xn--bcher-kva.example");
    assert_eq!(domain_key("ＢＵＣＨＥＲ.example"), "bucher.example");
    assert!(domain_in(
        "x@BÜCHER.example.",
        &["xn--bcher-kva.example".into()]
    ));
    assert!(domain_in(
        "x@xn--bcher-kva.example",
        &["Bücher.example".into()]
    ));
    assert!(!domain_in(
        "x@sub.bücher.example",
        &["bücher.example".into()]
    ));
    assert!(!domain_in("nobody", &["bücher.example".into()]));
}

#[test]
fn domain_literals_compare_by_their_address() {
    assert_eq!(key("a@[IPv6:0:0::1]"), "a@[ipv6:::1]");
    assert_eq!(key("a@[ipv6:::1]"), "a@[ipv6:::1]");
    assert_eq!(key("a@[192.0.2.1]"), "a@[192.0.2.1]");
    assert_eq!(key("a@[Tag:Thing]"), "a@[tag:thing]");
}

#[test]
fn unicode_local_parts_are_nfc_and_case_insensitive() {
    let composed = "m\u{fc}ller@x.example";
    let decomposed = "mu\u{308}ller@x.example";
    assert_eq!(key(composed), key(decomposed));
    assert_eq!(key("M\u{dc}LLER@X.example"), key(composed));
    assert_eq!(canonical(decomposed), composed);
    assert_eq!(key("\"m\u{fc}ller\"@x.example"), key(composed));
}

fn local_part() -> impl Strategy<Value = String> {
    let atom =
        prop::string::string_regex("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,6}|[a-zé]{1,3}ü").unwrap();
    prop::collection::vec(atom, 1..4).prop_map(|atoms| atoms.join("."))
}

fn any_text() -> impl Strategy<Value = String> {
    prop::string::string_regex("[ -~äü\u{3002}\u{a0}\u{85}\u{2028}\r\n\t]{0,24}").unwrap()
}

proptest! {
    /// The display form is itself a spelling of the same address, and canonical forms
    /// are fixed points: `key` and `canonical` of a canonical form change nothing.
    #[test]
    fn canonical_forms_are_fixed_points(text in any_text()) {
        let k = key(&text);
        prop_assert_eq!(key(&k), k.clone());
        if let Some(address) = Address::parse(&text) {
            let shown = address.to_string();
            prop_assert_eq!(key(&shown), address.key());
            prop_assert_eq!(canonical(&shown), shown.clone());
        }
    }

    /// The plain-ASCII fast path gives what the general path gives.
    #[test]
    fn the_fast_path_agrees_with_the_general_path(
        text in "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]{1,8}@(xn--|XN--)?[a-zA-Z0-9.-]{1,12}",
    ) {
        let general = Address::parse(&text).map(|a| a.key());
        if let Some(fast) = plain_key(&text) {
            prop_assert_eq!(Some(fast), general);
        }
    }

    /// Quoting, escaping every character, case and a trailing dot never change the key.
    #[test]
    fn quoting_and_case_never_change_the_key(local in local_part(), upper in any::<bool>()) {
        let plain = format!("{local}@example.com");
        let escaped: String = local.chars().map(|c| format!("\\{c}")).collect();
        let cased = if upper { local.to_uppercase() } else { local.to_lowercase() };
        for spelling in [
            format!("\"{local}\"@example.com"),
            format!("\"{escaped}\"@Example.COM."),
            format!("<\"{cased}\"@EXAMPLE.com>"),
        ] {
            prop_assert_eq!(key(&spelling), key(&plain), "{}", spelling);
        }
    }
}
