//! The fake upstream's mail transaction: MAIL, RCPT, then the message with DATA
//! (dot-stuffed lines up to `.`) or with BDAT chunks of exact sizes (RFC 3030), and the
//! scripted final reply.

use super::{Message, Session};
use tokio::io::{AsyncRead, AsyncWrite};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn mail(&mut self, text: &str) {
        if let Some(reply) = self.script.mail_reply.clone() {
            return self.reply(&reply);
        }
        self.mail_from = Some(address(text));
        self.reply("250 2.1.0 sender ok");
    }

    pub(super) fn rcpt(&mut self, text: &str) {
        if self.mail_from.is_none() {
            return self.reply("503 5.5.1 need MAIL first");
        }
        let rcpt = address(text);
        let scripted = self
            .script
            .rcpt_replies
            .iter()
            .find(|(addr, _)| *addr == rcpt);
        match scripted.map(|(_, reply)| reply.clone()) {
            Some(reply) => self.reply(&reply),
            None => {
                self.rcpts.push(rcpt);
                self.reply("250 2.1.5 recipient ok");
            }
        }
    }

    /// The reply to DATA or to a last chunk when there is no transaction to take a message.
    fn refusal(&self) -> Option<&'static str> {
        match (&self.mail_from, self.rcpts.is_empty()) {
            (None, _) => Some("503 5.5.1 need MAIL first"),
            (Some(_), true) => Some("554 5.5.1 no valid recipients"),
            (Some(_), false) => None,
        }
    }

    /// Returns true when the connection is to be closed after this message.
    pub(super) async fn data(&mut self) -> std::io::Result<bool> {
        if let Some(wait) = self.script.slow_data {
            tokio::time::sleep(wait).await;
        }
        if let Some(refusal) = self.refusal() {
            self.reply(refusal);
            return Ok(false);
        }
        self.reply("354 go ahead");
        let mut data = Vec::new();
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(true);
            };
            if line == b".\r\n" {
                break;
            }
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(unstuffed);
        }
        self.finish(data).await
    }

    /// `BDAT <size> [LAST]`: reads exactly `size` octets whatever the state (they are never
    /// commands), answers each chunk, and finishes the message with the last one. Returns
    /// true when the connection is to be closed.
    pub(super) async fn bdat(&mut self, text: &str) -> std::io::Result<bool> {
        let words: Vec<&str> = text.split(' ').collect();
        let size = words.get(1).and_then(|w| w.parse::<usize>().ok());
        let last = words.get(2).is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
        let Some(size) = size.filter(|_| words.len() <= 3) else {
            self.reply("501 5.5.4 syntax: BDAT size [LAST]");
            return Ok(true);
        };
        let Some(chunk) = self.read_octets(size).await? else {
            return Ok(true);
        };
        if let Some(refusal) = self.refusal() {
            self.chunks.clear();
            self.reply(refusal);
            return Ok(false);
        }
        self.chunks.extend_from_slice(&chunk);
        if !last {
            self.reply(&format!("250 2.0.0 {size} octets received"));
            return Ok(false);
        }
        let data = std::mem::take(&mut self.chunks);
        self.finish(data).await
    }

    /// Exactly `n` octets of input (pipelined replies go out before waiting for more).
    async fn read_octets(&mut self, n: usize) -> std::io::Result<Option<Vec<u8>>> {
        while self.input.len() < n {
            if !self.fill().await? {
                return Ok(None);
            }
        }
        Ok(Some(self.input.drain(..n).collect()))
    }

    /// Records the message (when the scripted reply is 2xx) and answers it.
    async fn finish(&mut self, data: Vec<u8>) -> std::io::Result<bool> {
        let attempt = {
            let mut record = self.record.lock().unwrap();
            record.data_attempts += 1;
            record.data_attempts
        };
        let reply = match attempt <= self.script.tempfail_first {
            true => Some(
                self.script
                    .tempfail_reply
                    .clone()
                    .unwrap_or_else(|| "451 4.3.0 try again later".to_string()),
            ),
            false => self.script.data_reply.clone(),
        };
        let reply = reply.as_deref().unwrap_or("250 2.0.0 queued");
        let mail_from = self.mail_from.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut self.rcpts);
        if reply.starts_with('2') {
            self.record.lock().unwrap().messages.push(Message {
                mail_from,
                rcpts,
                data,
                tls: self.tls,
            });
        }
        self.reply(reply);
        self.messages += 1;
        if self.script.close_after_messages == Some(self.messages) {
            if self.script.goodbye.is_some() {
                self.closing = true;
                return Ok(false);
            }
            self.flush().await?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// The address between `<` and `>` of a MAIL/RCPT line.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}
