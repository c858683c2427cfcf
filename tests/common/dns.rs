//! A real DNS server for the tests: UDP on 127.0.0.1:0, answering TXT questions from a
//! table (names are compared without case and without the final dot); any other name is
//! NXDOMAIN, any other type for a known name is an empty answer.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The server's address; it runs until the test's runtime ends.
pub async fn serve(txt: &[(&str, &str)]) -> SocketAddr {
    let table: HashMap<String, Vec<String>> =
        txt.iter().fold(HashMap::new(), |mut table, (name, text)| {
            table
                .entry(name.trim_end_matches('.').to_ascii_lowercase())
                .or_default()
                .push(text.to_string());
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

fn answer(query: &Message, table: &HashMap<String, Vec<String>>) -> Message {
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
        let Some(texts) = table.get(&name) else {
            response.metadata.response_code = ResponseCode::NXDomain;
            continue;
        };
        if question.query_type() != RecordType::TXT {
            continue;
        }
        for text in texts {
            // TXT strings are at most 255 octets each.
            let parts = text
                .as_bytes()
                .chunks(255)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            let owner = Name::from_ascii(format!("{name}.")).unwrap();
            response.add_answer(Record::from_rdata(owner, 60, RData::TXT(TXT::new(parts))));
        }
    }
    response
}
