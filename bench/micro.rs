//! Micro-benchmarks (criterion) of the hot path's pieces, so a regression shows without
//! the whole harness: the SMTP framing and argument parser, the header rewrite, and the
//! durable spool write (group commit included).
//!
//! `cargo bench --bench micro`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use postern::config::QueueConfig;
use postern::metrics::Metrics;
use postern::rewrite::{apply, inspect, Plan};
use postern::smtp::deadline::Timing;
use postern::smtp::io::{Conn, DataLimits};
use postern::smtp::params::{check_mailbox, mail_params, split_path};
use postern::spool::{Envelope, Spool};
use postern::store::Store;
use std::time::Duration;

const HEADER: &str = "From: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.net>\r\n\
Subject: quarterly report\r\nDate: Sun, 22 Nov 2026 10:41:06 +0000\r\n\
Message-ID: <abc.123@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";

fn message(body: usize) -> Vec<u8> {
    let mut msg = HEADER.as_bytes().to_vec();
    let line = "x".repeat(74) + "\r\n";
    while msg.len() < HEADER.len() + body {
        msg.extend_from_slice(line.as_bytes());
    }
    msg
}

fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("parser");
    let line = "MAIL FROM:<alice@example.com> SIZE=4096 BODY=8BITMIME";
    group.bench_function("mail_from_arguments", |b| {
        b.iter(|| {
            let (path, params) = split_path(line).unwrap();
            check_mailbox(path).unwrap();
            mail_params(params, 1 << 25).unwrap()
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut wire = message(4096);
    wire.extend_from_slice(b".\r\n");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("data_4k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let stream = tokio::io::join(&wire[..], tokio::io::sink());
                let timing = Timing {
                    session_end: std::time::Instant::now() + Duration::from_secs(3600),
                    idle: Duration::from_secs(5),
                    min_data_rate: 500,
                };
                let mut conn = Conn::new(stream, timing);
                let mut out = Vec::with_capacity(8192);
                let limits = DataLimits {
                    max_size: 1 << 25,
                    max_line: 1001,
                };
                conn.read_data(&mut out, limits).await.unwrap()
            })
        })
    });
    group.finish();
}

fn rewrite(c: &mut Criterion) {
    let mut group = c.benchmark_group("rewrite");
    for size in [4096usize, 1 << 20] {
        let msg = message(size);
        let mut template = vec![0u8; 8192];
        template.extend_from_slice(&msg);
        group.bench_function(format!("inspect_apply_{}k", size / 1024), |b| {
            b.iter_batched_ref(
                || template.clone(),
                |buf| {
                    let inspected = inspect(&buf[8192..]).unwrap();
                    let plan = Plan {
                        from_display: Some("Support Team"),
                        from_address: "support@example.com",
                        sender: Some((Some("Alice"), "alice@example.com")),
                        reply_to: None,
                        resent: None,
                        message_id_domain: "example.com",
                        unique: "0000000000000001",
                        date: "Sun, 22 Nov 2026 10:41:06 +0000",
                        trace: "Received: from client ([127.0.0.1])\r\n\tby gw (Postern) with ESMTPA id 1;\r\n\tSun, 22 Nov 2026 10:41:06 +0000\r\n",
                    };
                    apply(buf, 8192, &inspected, &plan)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn spool(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool");
    group.sample_size(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let spool_dir = dir.path().join("spool");
    let (spool, _new) = rt
        .block_on(Spool::open(
            store,
            &spool_dir,
            Metrics::new(),
            QueueConfig::default(),
        ))
        .unwrap();
    let data = bytes::Bytes::from(message(4096));
    group.bench_function("enqueue_4k_durable", |b| {
        b.iter(|| {
            rt.block_on(async {
                let id = spool.new_id().unwrap();
                let envelope = Envelope {
                    mail_from: "alice@example.com".into(),
                    rcpts: vec!["bob@example.net".into()],
                    upstream: "sink".into(),
                    principal: None,
                    smtputf8: false,
                    eight_bit: false,
                    is_dsn: false,
                    verdicts: None,
                    keep: None,
                };
                spool.enqueue(id, envelope, data.clone()).await.unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, parser, rewrite, spool);
criterion_main!(benches);
