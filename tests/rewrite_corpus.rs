//! The send-as header rewrite (SPEC §3.3) as a table: each case gives the exact client
//! message, the plan, and either the exact header block Postern writes (everything after
//! our trace field up to and including the empty line) or the exact refusal.
//!
//! Generated Message-IDs carry 16 random hex digits: in expected output `{rand}` stands for
//! exactly 16 lower-case hex digits; every other octet is compared exactly.

use postern::rewrite::{apply, inspect, Inspected, Plan, RewriteError};

const HEADROOM: usize = 8192;
const TRACE: &str = "Received: from client.example ([192.0.2.1])\r\n\tby gw.example (Postern) with ESMTPSA id q1;\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n";
const DATE: &str = "Thu, 1 Jan 1970 00:00:00 +0000";

/// Which display name the plan writes.
#[derive(Clone, Copy)]
enum Disp {
    /// The client's (decoded, sanitized) display name.
    Client,
    /// The account's display name.
    Account(&'static str),
    /// None at all.
    Without,
}

#[derive(Clone, Copy)]
struct Settings {
    display: Disp,
    /// `None`: write the client's address back (the account's own address).
    address: Option<&'static str>,
    sender: Option<(Option<&'static str>, &'static str)>,
    reply_to: Option<&'static str>,
}

/// send_as with the client's display name and address.
const AS: Settings = Settings {
    display: Disp::Client,
    address: None,
    sender: None,
    reply_to: None,
};

#[derive(Clone, Copy)]
enum Expect {
    /// The client's From as inspected (address, display) and the header block written
    /// after the trace field.
    Out(&'static str, Option<&'static str>, &'static str),
    Refused(RewriteError),
}
use Expect::{Out, Refused};

struct Case {
    name: &'static str,
    input: &'static str,
    plan: Settings,
    expect: Expect,
}

const fn case(name: &'static str, input: &'static str, expect: Expect) -> Case {
    with(name, input, AS, expect)
}

const fn with(name: &'static str, input: &'static str, plan: Settings, expect: Expect) -> Case {
    Case {
        name,
        input,
        plan,
        expect,
    }
}

/// Common client fields that keep Message-ID and Date from being generated.
macro_rules! md {
    () => {
        "Date: Fri, 2 Jan 1970 00:00:00 +0000\r\nMessage-ID: <1@client.example>\r\n"
    };
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // --- plain From and display names
    case("plain_from",
        concat!("From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hi\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", None,
            concat!("From: <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hi\r\n", md!(), "\r\n"))),
    case("display_ascii",
        concat!("From: Alice Smith <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", Some("Alice Smith"),
            concat!("From: Alice Smith <alice@example.com>\r\n", md!(), "\r\n"))),
    case("display_quoted_with_specials",
        concat!("From: \"Smith, Alice (Sales)\" <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", Some("Smith, Alice (Sales)"),
            concat!("From: \"Smith, Alice (Sales)\" <alice@example.com>\r\n", md!(), "\r\n"))),
    case("display_quoted_pairs_escaped_again",
        concat!("From: \"Alice \\\"Al\\\" Smith\\\\\" <a@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", Some("Alice \"Al\" Smith\\"),
            concat!("From: \"Alice \\\"Al\\\" Smith\\\\\" <a@example.com>\r\n", md!(), "\r\n"))),
    case("display_obs_phrase_with_dot_is_quoted",
        concat!("From: John Q. Public <jqp@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("jqp@example.com", Some("John Q. Public"),
            concat!("From: \"John Q. Public\" <jqp@example.com>\r\n", md!(), "\r\n"))),
    case("display_encoded_latin1_q",
        concat!("From: =?ISO-8859-1?Q?Andr=E9?= Pirard <andre@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("andre@example.com", Some("André Pirard"),
            concat!("From: =?UTF-8?B?QW5kcsOpIFBpcmFyZA==?= <andre@example.com>\r\n", md!(), "\r\n"))),
    case("display_encoded_latin1_b",
        concat!("From: =?ISO-8859-1?B?Wm/r?= <zoe@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("zoe@example.com", Some("Zoë"),
            concat!("From: =?UTF-8?B?Wm/Dqw==?= <zoe@example.com>\r\n", md!(), "\r\n"))),
    case("display_adjacent_encoded_words_join",
        concat!("From: =?UTF-8?Q?Zo?=\r\n =?UTF-8?Q?=C3=AB?= <zoe@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("zoe@example.com", Some("Zoë"),
            concat!("From: =?UTF-8?B?Wm/Dqw==?= <zoe@example.com>\r\n", md!(), "\r\n"))),
    case("display_encoded_word_inside_quotes_decoded",
        concat!("From: \"=?UTF-8?B?Wm/Dqw==?=\" <zoe@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("zoe@example.com", Some("Zoë"),
            concat!("From: =?UTF-8?B?Wm/Dqw==?= <zoe@example.com>\r\n", md!(), "\r\n"))),
    case("display_encoded_crlf_sanitized",
        concat!("From: =?UTF-8?B?QWxpY2UNCkJjYzogZXZpbEBleGFtcGxlLmNvbQ==?= <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", Some("Alice  Bcc: evil@example.com"),
            concat!("From: \"Alice  Bcc: evil@example.com\" <alice@example.com>\r\n", md!(), "\r\n"))),
    case("display_encoded_nul_sanitized",
        concat!("From: =?UTF-8?Q?A=00B=0D?= <a@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", Some("A B"),
            concat!("From: A B <a@example.com>\r\n", md!(), "\r\n"))),
    case("display_only_controls_is_none",
        concat!("From: =?UTF-8?B?DQoJAA==?= <a@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", None,
            concat!("From: <a@example.com>\r\n", md!(), "\r\n"))),
    case("display_raw_utf8_smtputf8",
        concat!("From: Jörg Müller <jörg@exämple.de>\r\n", md!(), "\r\nbody\r\n"),
        Out("jörg@exämple.de", Some("Jörg Müller"),
            concat!("From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <jörg@exämple.de>\r\n", md!(), "\r\n"))),
    case("display_cjk",
        concat!("From: =?UTF-8?B?5pel5pys6Kqe44Gu5ZCN5YmN?= <name@example.jp>\r\n", md!(), "\r\nbody\r\n"),
        Out("name@example.jp", Some("日本語の名前"),
            concat!("From: =?UTF-8?B?5pel5pys6Kqe44Gu5ZCN5YmN?= <name@example.jp>\r\n", md!(), "\r\n"))),
    case("display_long_ascii_folded",
        concat!("From: The Quite Extraordinarily Long Name Of The Customer Service Department Of Example Corporation <service@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("service@example.com", Some("The Quite Extraordinarily Long Name Of The Customer Service Department Of Example Corporation"),
            concat!("From: The Quite Extraordinarily Long Name Of The Customer Service Department\r\n Of Example Corporation <service@example.com>\r\n", md!(), "\r\n"))),
    case("display_long_non_ascii_split_and_folded",
        concat!("From: Anaïs Dupont-Lefèvre du Service Après-Vente de la Société Exemple Internationale <service@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("service@example.com", Some("Anaïs Dupont-Lefèvre du Service Après-Vente de la Société Exemple Internationale"),
            concat!("From: =?UTF-8?B?QW5hw69zIER1cG9udC1MZWbDqHZyZSBkdSBTZXJ2aWNlIEFwcsOocy1W?=\r\n =?UTF-8?B?ZW50ZSBkZSBsYSBTb2Npw6l0w6kgRXhlbXBsZSBJbnRlcm5hdGlvbmFs?=\r\n =?UTF-8?B?ZQ==?= <service@example.com>\r\n", md!(), "\r\n"))),
    with("display_from_account_overrides_client",
        concat!("From: Alice <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Settings { display: Disp::Account("Example Sales"), address: Some("sales@example.com"), ..AS },
        Out("alice@example.com", Some("Alice"),
            concat!("From: Example Sales <sales@example.com>\r\n", md!(), "\r\n"))),
    with("display_account_with_crlf_sanitized",
        concat!("From: alice@example.com\r\n", md!(), "\r\nbody\r\n"),
        Settings { display: Disp::Account("Sales\r\nBcc: x@evil.example"), address: Some("sales@example.com"), ..AS },
        Out("alice@example.com", None,
            concat!("From: \"Sales  Bcc: x@evil.example\" <sales@example.com>\r\n", md!(), "\r\n"))),
    with("display_none_default_account",
        concat!("From: Alice <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Settings { display: Disp::Without, ..AS },
        Out("alice@example.com", Some("Alice"),
            concat!("From: <alice@example.com>\r\n", md!(), "\r\n"))),
    // --- NUL and line syntax
    case("nul_in_subject_refused",
        concat!("From: a@example.com\r\nSubject: a\0b\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::NulInHeader)),
    case("nul_in_from_refused",
        concat!("From: A\0 <a@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::NulInHeader)),
    case("nul_in_body_is_fine",
        concat!("From: a@example.com\r\n", md!(), "\r\nbo\0dy\r\n"),
        Out("a@example.com", None, concat!("From: <a@example.com>\r\n", md!(), "\r\n"))),
    case("bare_lf_refused",
        concat!("From: a@example.com\r\nSubject: a\nBcc: b@example.com\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::BareLineEnd)),
    case("line_without_colon_refused",
        concat!("From: a@example.com\r\nSubject hi\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::HeaderSyntax)),
    case("space_before_colon_refused",
        concat!("From : a@example.com\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::HeaderSyntax)),
    case("leading_continuation_refused",
        concat!(" From: a@example.com\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::HeaderSyntax)),
    // --- folding, comments, quoting, routes
    case("folded_from_unfolded",
        concat!("From: Alice\r\n Smith\r\n\t<alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", Some("Alice Smith"),
            concat!("From: Alice Smith <alice@example.com>\r\n", md!(), "\r\n"))),
    case("folded_other_fields_byte_for_byte",
        concat!("To: a@example.org,\r\n  b@example.org\r\nFrom: a@example.com\r\nSubject: a very\r\n\tlong  subject \r\nX-Odd:no-space\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", None,
            concat!("From: <a@example.com>\r\nTo: a@example.org,\r\n  b@example.org\r\nSubject: a very\r\n\tlong  subject \r\nX-Odd:no-space\r\n", md!(), "\r\n"))),
    case("comments_in_from_removed",
        concat!("From: alice(work)@(the (nested) company)example.com (Alice)\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", None, concat!("From: <alice@example.com>\r\n", md!(), "\r\n"))),
    case("comment_after_display",
        concat!("From: Alice (Sales) <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", Some("Alice"),
            concat!("From: Alice <alice@example.com>\r\n", md!(), "\r\n"))),
    case("quoted_local_part_kept",
        concat!("From: \"john doe\"@example.com\r\n", md!(), "\r\nbody\r\n"),
        Out("\"john doe\"@example.com", None,
            concat!("From: <\"john doe\"@example.com>\r\n", md!(), "\r\n"))),
    case("quoted_local_part_with_display",
        concat!("From: John <\"j.doe@home\"@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("\"j.doe@home\"@example.com", Some("John"),
            concat!("From: John <\"j.doe@home\"@example.com>\r\n", md!(), "\r\n"))),
    case("obs_route_dropped",
        concat!("From: John <@relay1.example,@relay2.example:john@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Out("john@example.com", Some("John"),
            concat!("From: John <john@example.com>\r\n", md!(), "\r\n"))),
    case("obs_local_part_spaces",
        concat!("From: john . doe @ example . com\r\n", md!(), "\r\nbody\r\n"),
        Out("john.doe@example.com", None, concat!("From: <john.doe@example.com>\r\n", md!(), "\r\n"))),
    case("domain_literal",
        concat!("From: a@[192.0.2.1]\r\n", md!(), "\r\nbody\r\n"),
        Out("a@[192.0.2.1]", None, concat!("From: <a@[192.0.2.1]>\r\n", md!(), "\r\n"))),
    case("smtputf8_address",
        concat!("From: 用户@例子.广告\r\n", md!(), "\r\nbody\r\n"),
        Out("用户@例子.广告", None, concat!("From: <用户@例子.广告>\r\n", md!(), "\r\n"))),
    // --- From refusals
    case("missing_from",
        concat!("To: b@example.org\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::NoFrom)),
    case("empty_from",
        concat!("From: \r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromEmpty)),
    case("empty_from_no_space",
        concat!("From:\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromEmpty)),
    case("from_comment_only",
        concat!("From: (nobody)\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromEmpty)),
    case("two_from_fields",
        concat!("From: a@example.com\r\nTo: b@example.org\r\nFrom: b@example.com\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::MultipleFrom)),
    case("two_from_fields_any_case",
        concat!("From: a@example.com\r\nFROM: a@example.com\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::MultipleFrom)),
    case("from_list_with_sender",
        concat!("From: a@example.com, b@example.com\r\nSender: a@example.com\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromList)),
    case("from_list_without_sender",
        concat!("From: A <a@example.com>,\r\n B <b@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromListWithoutSender)),
    case("from_group_empty",
        concat!("From: undisclosed-recipients:;\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromGroup)),
    case("from_group_members",
        concat!("From: team: a@example.com, b@example.com;\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromGroup)),
    case("from_bare_word",
        concat!("From: alice\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromUnparsable)),
    case("from_unterminated_angle",
        concat!("From: Alice <alice@example.com\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromUnparsable)),
    case("from_unterminated_quote",
        concat!("From: \"Alice <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromUnparsable)),
    case("from_empty_angle",
        concat!("From: <>\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromUnparsable)),
    case("from_raw_control_char",
        concat!("From: Al\u{1}ice <alice@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Refused(RewriteError::FromUnparsable)),
    // --- Sender, removed fields, Reply-To
    case("sender_removed_for_send_as",
        concat!("Sender: bob@example.com\r\nFrom: alice@example.com\r\nsender: carol@example.com\r\n", md!(), "\r\nbody\r\n"),
        Out("alice@example.com", None, concat!("From: <alice@example.com>\r\n", md!(), "\r\n"))),
    with("sender_written_for_on_behalf",
        concat!("Subject: s\r\nSender: bob@example.com\r\nFrom: Shared <shared@example.com>\r\n", md!(), "\r\nbody\r\n"),
        Settings { sender: Some((Some("Agent Smith"), "agent@example.com")), ..AS },
        Out("shared@example.com", Some("Shared"),
            concat!("From: Shared <shared@example.com>\r\nSender: Agent Smith <agent@example.com>\r\nSubject: s\r\n", md!(), "\r\n"))),
    with("sender_without_display",
        concat!("From: shared@example.com\r\n", md!(), "\r\nbody\r\n"),
        Settings { sender: Some((None, "agent@example.com")), ..AS },
        Out("shared@example.com", None,
            concat!("From: <shared@example.com>\r\nSender: <agent@example.com>\r\n", md!(), "\r\n"))),
    case("bcc_and_return_path_removed",
        concat!("Return-Path: <x@example.org>\r\nFrom: a@example.com\r\nBcc: secret@example.org\r\nbcc: other@example.org,\r\n more@example.org\r\nTo: b@example.org\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", None,
            concat!("From: <a@example.com>\r\nTo: b@example.org\r\n", md!(), "\r\n"))),
    case("x_postern_fields_removed",
        concat!("X-Postern-Account: sales\r\nFrom: a@example.com\r\nx-postern-debug: 1\r\nX-POSTERN-TRACE:\r\n folded\r\nX-Posterns: kept\r\nX-Mailer: kept\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", None,
            concat!("From: <a@example.com>\r\nX-Posterns: kept\r\nX-Mailer: kept\r\n", md!(), "\r\n"))),
    with("reply_to_replaced",
        concat!("Reply-To: a@example.org\r\nFrom: a@example.com\r\nREPLY-TO: b@example.org\r\n", md!(), "\r\nbody\r\n"),
        Settings { reply_to: Some("support@example.com"), ..AS },
        Out("a@example.com", None,
            concat!("From: <a@example.com>\r\nReply-To: <support@example.com>\r\n", md!(), "\r\n"))),
    with("reply_to_added_when_missing",
        concat!("From: a@example.com\r\n", md!(), "\r\nbody\r\n"),
        Settings { reply_to: Some("support@example.com"), sender: Some((None, "p@example.com")), ..AS },
        Out("a@example.com", None,
            concat!("From: <a@example.com>\r\nSender: <p@example.com>\r\nReply-To: <support@example.com>\r\n", md!(), "\r\n"))),
    case("reply_to_kept",
        concat!("Reply-To: Team <team@example.org>\r\nFrom: a@example.com\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", None,
            concat!("From: <a@example.com>\r\nReply-To: Team <team@example.org>\r\n", md!(), "\r\n"))),
    // --- Message-ID and Date
    case("message_id_added",
        "From: a@example.com\r\nDate: Fri, 2 Jan 1970 00:00:00 +0000\r\n\r\nbody\r\n",
        Out("a@example.com", None,
            "From: <a@example.com>\r\nDate: Fri, 2 Jan 1970 00:00:00 +0000\r\nMessage-ID: <q1.{rand}@example.com>\r\n\r\n")),
    case("date_added",
        "Message-ID: <1@client.example>\r\nFrom: a@example.com\r\n\r\nbody\r\n",
        Out("a@example.com", None,
            "From: <a@example.com>\r\nMessage-ID: <1@client.example>\r\nDate: Thu, 1 Jan 1970 00:00:00 +0000\r\n\r\n")),
    case("message_id_and_date_added",
        "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n",
        Out("a@example.com", None,
            "From: <a@example.com>\r\nSubject: s\r\nMessage-ID: <q1.{rand}@example.com>\r\nDate: Thu, 1 Jan 1970 00:00:00 +0000\r\n\r\n")),
    case("lowercase_names_recognised",
        "from: A <a@example.com>\r\nbcc: b@example.org\r\nmessage-id: <1@c>\r\ndate: Fri, 2 Jan 1970 00:00:00 +0000\r\n\r\nbody\r\n",
        Out("a@example.com", Some("A"),
            "From: A <a@example.com>\r\nmessage-id: <1@c>\r\ndate: Fri, 2 Jan 1970 00:00:00 +0000\r\n\r\n")),
    case("uppercase_names_recognised",
        "FROM: A <a@example.com>\r\nBCC: b@example.org\r\nMESSAGE-ID: <1@c>\r\nDATE: Fri, 2 Jan 1970 00:00:00 +0000\r\n\r\nbody\r\n",
        Out("a@example.com", Some("A"),
            "From: A <a@example.com>\r\nMESSAGE-ID: <1@c>\r\nDATE: Fri, 2 Jan 1970 00:00:00 +0000\r\n\r\n")),
    // --- block boundaries and body
    case("no_body_no_empty_line",
        concat!("From: a@example.com\r\n", md!()),
        Out("a@example.com", None, concat!("From: <a@example.com>\r\n", md!(), "\r\n"))),
    case("no_body_with_empty_line",
        concat!("From: a@example.com\r\n", md!(), "\r\n"),
        Out("a@example.com", None, concat!("From: <a@example.com>\r\n", md!(), "\r\n"))),
    case("body_with_header_like_lines_untouched",
        concat!("From: a@example.com\r\n", md!(), "\r\nFrom: evil@example.org\r\nBcc: x@example.org\r\nX-Postern-Account: other\r\n\r\n\0\r\n"),
        Out("a@example.com", None, concat!("From: <a@example.com>\r\n", md!(), "\r\n"))),
    case("existing_received_kept_after_trace",
        concat!("Received: from a.example\r\n\tby b.example; Fri, 2 Jan 1970 00:00:00 +0000\r\nFrom: a@example.com\r\n", md!(), "\r\nbody\r\n"),
        Out("a@example.com", None,
            concat!("Received: from a.example\r\n\tby b.example; Fri, 2 Jan 1970 00:00:00 +0000\r\nFrom: <a@example.com>\r\n", md!(), "\r\n"))),
];

/// Compares `got` with `expected`, where `{rand}` matches 16 lower-case hex digits.
fn matches(expected: &str, got: &[u8]) -> bool {
    let Some((head, tail)) = expected.split_once("{rand}") else {
        return expected.as_bytes() == got;
    };
    let (head, tail) = (head.as_bytes(), tail.as_bytes());
    got.len() == head.len() + 16 + tail.len()
        && got.starts_with(head)
        && got.ends_with(tail)
        && got[head.len()..head.len() + 16]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn plan<'a>(settings: &Settings, inspected: &'a Inspected) -> Plan<'a> {
    Plan {
        from_display: match settings.display {
            Disp::Client => inspected.from.display.as_deref(),
            Disp::Account(name) => Some(name),
            Disp::Without => None,
        },
        from_address: settings.address.unwrap_or(&inspected.from.address),
        sender: settings.sender,
        reply_to: settings.reply_to,
        resent: None,
        message_id_domain: "example.com",
        unique: "q1",
        date: DATE,
        trace: TRACE,
    }
}

/// send_as as `a@example.com`, no display name, with `trace`.
fn bare_plan(trace: &str) -> Plan<'_> {
    Plan {
        from_display: None,
        from_address: "a@example.com",
        sender: None,
        reply_to: None,
        resent: None,
        message_id_domain: "example.com",
        unique: "q1",
        date: DATE,
        trace,
    }
}

/// Runs one case; `Err` describes the mismatch.
fn run(case: &Case) -> Result<(), String> {
    match case.expect {
        Refused(want) => match inspect(case.input.as_bytes()) {
            Err(got) if got == want => Ok(()),
            got => Err(format!("want {want:?}, got {got:?}")),
        },
        Out(address, display, header) => rewrite(case, (address, display), header),
    }
}

/// Inspects and rewrites an accepted case with headroom, checking From, the header block
/// written, the body (same bytes, same place) and the Message-ID in effect.
fn rewrite(case: &Case, from: (&str, Option<&str>), header: &str) -> Result<(), String> {
    let input = case.input.as_bytes();
    let inspected = inspect(input).map_err(|e| format!("refused: {e:?}"))?;
    if (
        inspected.from.address.as_str(),
        inspected.from.display.as_deref(),
    ) != from
    {
        return Err(format!("inspected From: {:?}", inspected.from));
    }
    let mut buf = vec![0u8; HEADROOM];
    buf.extend_from_slice(input);
    let body_start = HEADROOM + inspected.header_len;
    let (buf_ptr, body) = (buf.as_ptr(), input[inspected.header_len..].to_vec());
    let plan = plan(&case.plan, &inspected);
    let (new_start, message_id) = apply(&mut buf, HEADROOM, &inspected, &plan);
    let got = &buf[new_start..body_start];
    let expected = format!("{TRACE}{header}");
    if !matches(&expected, got) {
        return Err(format!(
            "header\n  want {expected:?}\n  got  {:?}",
            String::from_utf8_lossy(got)
        ));
    }
    if buf[body_start..] != body[..] || buf.as_ptr() != buf_ptr {
        return Err("body changed or moved".into());
    }
    let id_field = format!("\r\nMessage-ID: {message_id}\r\n").to_lowercase();
    if !String::from_utf8_lossy(got)
        .to_lowercase()
        .contains(&id_field)
    {
        return Err(format!(
            "Message-ID in effect {message_id:?} not in the header"
        ));
    }
    Ok(())
}

#[test]
fn corpus() {
    assert!(CASES.len() >= 45, "{} cases", CASES.len());
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names are unique");
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| run(case).err().map(|e| format!("{}: {e}", case.name)))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn inspected_fields() {
    let message = b"Received: a\r\nreceived: b\r\nFrom: A <a@example.com>\r\nSender: =?UTF-8?Q?B=0A?= <b@example.com>\r\nX-Postern-Account:\r\n  sales \r\n\r\nbody";
    let inspected = inspect(message).unwrap();
    assert_eq!(inspected.header_len, message.len() - 4);
    assert_eq!(inspected.received, 2);
    assert_eq!(inspected.account_hint.as_deref(), Some("sales"));
    assert!(!inspected.has_message_id && !inspected.has_date);
    let sender = inspected.sender.unwrap();
    assert_eq!(
        (sender.display.as_deref(), sender.address.as_str()),
        (Some("B"), "b@example.com")
    );

    let two_senders = b"From: a@x.example\r\nSender: b@x.example\r\nSender: c@x.example\r\n\r\n";
    assert_eq!(inspect(two_senders).unwrap().sender, None);
    let bad_sender = b"From: a@x.example\r\nSender: b, c\r\n\r\n";
    assert_eq!(inspect(bad_sender).unwrap().sender, None);
    let empty_hint = b"From: a@x.example\r\nX-Postern-Account:  \r\n\r\n";
    assert_eq!(inspect(empty_hint).unwrap().account_hint, None);
    let two_hints = b"From: a@x.example\r\nX-Postern-Account: a\r\nx-postern-account: b\r\n\r\n";
    assert_eq!(inspect(two_hints), Err(RewriteError::MultipleAccountHints));
    let latin1_hint = b"From: a@x.example\r\nX-Postern-Account: caf\xe9\r\n\r\n";
    assert_eq!(
        inspect(latin1_hint),
        Err(RewriteError::AccountHintUnparsable)
    );
}

#[test]
fn eight_bit_bytes() {
    let latin1_from = b"From: Andr\xe9 <andre@example.com>\r\n\r\nbody";
    assert_eq!(inspect(latin1_from), Err(RewriteError::FromUnparsable));
    let latin1_subject = b"From: a@example.com\r\nSubject: caf\xe9\r\n\r\nbody";
    let inspected = inspect(latin1_subject).unwrap();
    let mut buf = latin1_subject.to_vec();
    let (start, _) = apply(&mut buf, 0, &inspected, &bare_plan(""));
    assert_eq!(
        start, 0,
        "no headroom: the block grew, the buffer was spliced"
    );
    let out = &buf[start..];
    assert!(out.starts_with(b"From: <a@example.com>\r\nSubject: caf\xe9\r\nMessage-ID: <q1."));
    assert!(out.ends_with(b"\r\nDate: Thu, 1 Jan 1970 00:00:00 +0000\r\n\r\nbody"));
}

#[test]
fn message_id_in_effect() {
    let message = b"From: a@example.com\r\nMessage-ID:\r\n <abc@client.example> \r\n\r\nbody";
    let inspected = inspect(message).unwrap();
    let mut buf = vec![0; 512];
    buf.extend_from_slice(message);
    let (_, id) = apply(&mut buf, 512, &inspected, &bare_plan(TRACE));
    assert_eq!(id, "<abc@client.example>");
}

#[test]
fn refusal_replies_name_the_problem() {
    assert_eq!(
        RewriteError::MultipleFrom.reply(),
        "550 5.6.0 message has two From fields"
    );
    for case in CASES {
        if let Refused(error) = case.expect {
            assert!(error.reply().starts_with("550 5.6.0 "), "{}", case.name);
        }
    }
}
