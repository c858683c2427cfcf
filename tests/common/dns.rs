//! A real DNS server for the tests: UDP on 127.0.0.1:0, answering TXT, MX and A questions
//! from a table (names are compared without case and without the final dot); any other
//! name is NXDOMAIN, any other type for a known name is an empty answer.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// One record of the table.
#[derive(Debug, Clone)]
pub enum Rr {
    Txt(String),
    /// Preference and exchange (`.` for a null MX).
    Mx(u16, String),
    A(std::net::Ipv4Addr),
}

/// A server answering TXT questions from `txt`; it runs until the test's runtime ends.
pub async fn serve(txt: &[(&str, &str)]) -> SocketAddr {
    let records: Vec<(&str, Rr)> = txt
        .iter()
        .map(|(name, text)| (*name, Rr::Txt(text.to_string())))
        .collect();
    serve_records(&records).await
}

/// A server answering from `records`.
pub async fn serve_records(records: &[(&str, Rr)]) -> SocketAddr {
    let table: HashMap<String, Vec<Rr>> =
        records
            .iter()
            .fold(HashMap::new(), |mut table, (name, rr)| {
                table
                    .entry(name.trim_end_matches('.').to_ascii_lowercase())
                    .or_default()
                    .push(rr.clone());
                table
            });
    let table = Arc::new(table);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let answer = answer(&query, &table);
            if let Ok(bytes) = answer.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}

fn answer(query: &Message, table: &HashMap<String, Vec<Rr>>) -> Message {
    let mut response = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    for question in &query.queries {
        response.add_query(question.clone());
        let name = question
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let Some(rrs) = table.get(&name) else {
            response.metadata.response_code = ResponseCode::NXDomain;
            continue;
        };
        let owner = Name::from_ascii(format!("{name}.")).unwrap();
        for rr in rrs {
            let data = match (rr, question.query_type()) {
                (Rr::Txt(text), RecordType::TXT) => {
                    // TXT strings are at most 255 octets each.
                    let parts = text
                        .as_bytes()
                        .chunks(255)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect();
                    RData::TXT(TXT::new(parts))
                }
                (Rr::Mx(preference, exchange), RecordType::MX) => {
                    let exchange = match exchange.as_str() {
                        "." => Name::root(),
                        host => Name::from_ascii(format!("{host}.")).unwrap(),
                    };
                    RData::MX(MX::new(*preference, exchange))
                }
                (Rr::A(ip), RecordType::A) => RData::A(A(*ip)),
                _ => continue,
            };
            response.add_answer(Record::from_rdata(owner.clone(), 60, data));
        }
    }
    response
}
