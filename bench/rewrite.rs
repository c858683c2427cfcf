//! Cost of the send-as header rewrite (`inspect` + `apply`) per message, for a typical
//! header block in front of 4 KiB, 64 KiB and 1 MiB bodies. The rewrite reads and writes
//! the header block only, so the cost per message must not grow with the body.
//!
//! Each iteration inspects the message, rewrites it in place (headroom reserved before the
//! message) and then copies the original header block back (a header-sized copy, included
//! in the figures) so the next iteration starts from the client's bytes again. Figures are
//! the median of several timed rounds after a warm-up round.
//!
//! Run with `cargo bench --bench rewrite`.

use postern::rewrite::{apply, inspect, Plan};
use std::hint::black_box;
use std::time::Instant;

const HEADROOM: usize = 8192;
const ROUNDS: usize = 11;
const ITERATIONS: usize = 20_000;

const HEADER: &str = "Received: from [10.1.2.3] (laptop.corp.example [10.1.2.3])\r\n\
\tby mail.corp.example with ESMTPSA id 4Xk2p1;\r\n\
\tMon, 23 Nov 2026 09:12:44 +0100\r\n\
From: =?UTF-8?Q?Anna_M=C3=BCller?= <anna.mueller@corp.example>\r\n\
To: \"Support Team\" <support@customer.example>, ops@customer.example\r\n\
Cc: Bob Example <bob@corp.example>\r\n\
Bcc: archive@corp.example\r\n\
Subject: Re: Ticket #48213 - invoice for November is missing the\r\n\
\x20purchase order number\r\n\
Date: Mon, 23 Nov 2026 09:12:40 +0100\r\n\
Message-ID: <a7c1e2f0-3b9d-4c55-9d1e-5f2a8b7c6d10@corp.example>\r\n\
In-Reply-To: <CAF9x2kq=abc123@customer.example>\r\n\
References: <CAF9x2kq=abc123@customer.example>\r\n\
\x20<20261122.174501.998877@customer.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1_3f9a7c\"\r\n\
User-Agent: Mozilla/5.0 Thunderbird/128.4.0\r\n\
X-Postern-Account: billing\r\n\
\r\n";

/// A message: the header block above and `size` octets of CRLF lines.
fn message(size: usize) -> Vec<u8> {
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n";
    let mut message = HEADER.as_bytes().to_vec();
    let mut body = Vec::with_capacity(size + line.len());
    while body.len() < size {
        body.extend_from_slice(line);
    }
    body.truncate(size);
    message.extend_from_slice(&body);
    message
}

/// Median nanoseconds per message for `message` over [`ROUNDS`] rounds.
fn measure(message: &[u8]) -> f64 {
    let mut buf = vec![0u8; HEADROOM];
    buf.extend_from_slice(message);
    let header_len = HEADER.len();
    let original = message[..header_len].to_vec();
    let trace = "Received: from laptop.corp.example ([192.0.2.10])\r\n\tby gw.example (Postern) with ESMTPSA id 00000000000004d2;\r\n\tMon, 23 Nov 2026 08:12:44 +0000\r\n";
    let mut round = |iterations: usize| {
        let started = Instant::now();
        for _ in 0..iterations {
            let inspected = inspect(black_box(&buf[HEADROOM..])).expect("typical message");
            let plan = Plan {
                from_display: Some("Corp Billing"),
                from_address: "billing@corp.example",
                sender: Some((inspected.from.display.as_deref(), &inspected.from.address)),
                reply_to: None,
                resent: None,
                message_id_domain: "corp.example",
                unique: "00000000000004d2",
                date: "Mon, 23 Nov 2026 08:12:44 +0000",
                trace,
            };
            let (start, id) = apply(&mut buf, HEADROOM, &inspected, &plan);
            black_box((start, id));
            buf[HEADROOM..HEADROOM + header_len].copy_from_slice(&original);
        }
        started.elapsed().as_nanos() as f64 / iterations as f64
    };
    round(ITERATIONS / 4);
    let mut samples: Vec<f64> = (0..ROUNDS).map(|_| round(ITERATIONS)).collect();
    samples.sort_by(f64::total_cmp);
    samples[ROUNDS / 2]
}

/// Nanoseconds to copy `size` octets once, for scale (what the rewrite avoids).
fn copy_cost(size: usize) -> f64 {
    let source = vec![7u8; size];
    let mut target = vec![0u8; size];
    let iterations = (64 << 20) / size.max(1);
    let started = Instant::now();
    for _ in 0..iterations {
        target.copy_from_slice(black_box(&source));
        black_box(&target);
    }
    started.elapsed().as_nanos() as f64 / iterations as f64
}

fn main() {
    let header_len = HEADER.len();
    println!("rewrite: inspect + apply per message, header block {header_len} octets, median of {ROUNDS} rounds x {ITERATIONS}");
    println!();
    println!("| body size | ns per message | ns per header byte | (one body copy, ns) |");
    println!("|---:|---:|---:|---:|");
    for (label, size) in [("4 KiB", 4 << 10), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20)] {
        let ns = measure(&message(size));
        let copy = copy_cost(size);
        println!(
            "| {label} | {ns:.0} | {:.2} | {copy:.0} |",
            ns / header_len as f64
        );
    }
}
