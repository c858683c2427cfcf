//! One mail transaction on an open connection: MAIL FROM, RCPT TO per recipient, DATA and
//! the message, pipelined in one write when the upstream offers PIPELINING (RFC 2920),
//! lockstep otherwise; a reused connection is first checked with RSET. On a pipelining
//! connection the wait for `354` is an open stop (`stop`): a rider that boards it has its
//! envelope written behind this message's data and gets the connection afterwards.
//!
//! An upstream that offers CHUNKING as well (Microsoft 365 and Gmail do) gets the envelope
//! and the whole message as one `BDAT <size> LAST` chunk (RFC 3030) in a single write: one
//! round trip per message instead of two. There is no wait for `354` there, so no stop.
//!
//! It turns replies into per-recipient outcomes. It does not decide about retries or the
//! pool beyond saying whether the connection is still clean enough to reuse.

use super::conn::{Capabilities, Connection};
use super::error::SmtpError;
use super::reply::Reply;
use super::session::command;
use super::stop::{Rider, Stop, Stops};
use crate::relay::{Outgoing, RcptOutcome};
use smtp_proto::{EXT_8BIT_MIME, EXT_CHUNKING, EXT_PIPELINING, EXT_SMTP_UTF8};

/// How a transaction starts on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// A new connection: MAIL FROM first.
    Fresh,
    /// A pooled connection: RSET first (pipelined with the envelope when offered).
    Reused,
    /// The envelope went out behind another message's data: only its replies are read.
    Riding,
}

/// A finished transaction: one outcome per recipient, in order.
pub(crate) struct Done {
    /// What the upstream said about each recipient.
    pub(crate) outcomes: Vec<RcptOutcome>,
    /// The connection ended in a clean state and may go back to the pool.
    pub(crate) reusable: bool,
    /// A rider whose envelope was written behind this message: the connection is theirs.
    pub(crate) rider: Option<Rider>,
}

/// A transaction that failed as a whole.
pub(crate) struct Failed {
    /// What went wrong.
    pub(crate) error: SmtpError,
    /// The upstream had accepted MAIL FROM before the failure.
    pub(crate) mail_accepted: bool,
}

/// The replies to the envelope commands (and to DATA when it was sent).
struct Envelope {
    mail: Reply,
    rcpts: Vec<Reply>,
    data: Option<Reply>,
}

/// Runs one transaction for `msg`. With `stops`, a pipelining connection opens a stop
/// while it waits for `354` (see `stop`).
pub(crate) async fn run(
    conn: &mut Connection,
    msg: &Outgoing<'_>,
    start: Start,
    stops: Option<&Stops>,
) -> Result<Done, Failed> {
    let mut mail_accepted = false;
    let result = transact(conn, msg, start, stops, &mut mail_accepted).await;
    result.map_err(|error| Failed {
        error,
        mail_accepted,
    })
}

async fn transact(
    conn: &mut Connection,
    msg: &Outgoing<'_>,
    start: Start,
    stops: Option<&Stops>,
    mail_accepted: &mut bool,
) -> Result<Done, SmtpError> {
    check_envelope(msg)?;
    // A rider's DATA went out behind its leader's message: it continues with DATA.
    let chunked = conn.caps.has(EXT_PIPELINING) && conn.caps.has(EXT_CHUNKING);
    if chunked && start != Start::Riding {
        chunked_transaction(conn, msg, start == Start::Reused, mail_accepted).await
    } else if conn.caps.has(EXT_PIPELINING) {
        let (envelope, stop) = envelope_pipelined(conn, msg, start, stops, mail_accepted).await?;
        finish(conn, msg, envelope, stop).await
    } else {
        let reused = start == Start::Reused;
        let envelope = envelope_lockstep(conn, msg, reused, mail_accepted).await?;
        finish(conn, msg, envelope, None).await
    }
}

/// Refuses an envelope whose addresses would break a command line.
pub(crate) fn check_envelope(msg: &Outgoing<'_>) -> Result<(), SmtpError> {
    check_address(msg.mail_from)?;
    msg.rcpts.iter().try_for_each(|rcpt| check_address(rcpt))
}

/// Refuses addresses that would break the command line (they were checked on the way in;
/// this guards the upstream against command injection all the same).
fn check_address(addr: &str) -> Result<(), SmtpError> {
    if addr
        .bytes()
        .any(|b| matches!(b, b'\r' | b'\n' | b'<' | b'>'))
    {
        return Err(SmtpError::Config(format!("unusable address {addr:?}")));
    }
    Ok(())
}

/// A 421 means the upstream is going away: the whole attempt fails.
fn live(reply: Reply) -> Result<Reply, SmtpError> {
    if reply.code == 421 {
        Err(SmtpError::Closing(reply))
    } else {
        Ok(reply)
    }
}

/// Appends MAIL FROM with the parameters the message needs and the upstream offers.
fn push_mail(conn: &mut Connection, msg: &Outgoing<'_>) {
    let caps = conn.caps;
    mail_command(
        &mut conn.wbuf,
        caps,
        msg.mail_from,
        msg.smtputf8,
        msg.eight_bit,
    );
}

fn mail_command(buf: &mut Vec<u8>, caps: Capabilities, from: &str, utf8: bool, eight_bit: bool) {
    buf.extend_from_slice(b"MAIL FROM:<");
    buf.extend_from_slice(from.as_bytes());
    buf.push(b'>');
    if utf8 && caps.has(EXT_SMTP_UTF8) {
        buf.extend_from_slice(b" SMTPUTF8");
    }
    if eight_bit && caps.has(EXT_8BIT_MIME) {
        buf.extend_from_slice(b" BODY=8BITMIME");
    }
    buf.extend_from_slice(b"\r\n");
}

fn push_rcpt(buf: &mut Vec<u8>, rcpt: &str) {
    command(buf, &[b"RCPT TO:<", rcpt.as_bytes(), b">"]);
}

/// A rider's MAIL, RCPTs and DATA, to follow this message's final dot.
fn rider_envelope(caps: Capabilities, rider: &Rider) -> Vec<u8> {
    let env = &rider.envelope;
    let mut buf = Vec::with_capacity(128);
    mail_command(&mut buf, caps, &env.mail_from, env.smtputf8, env.eight_bit);
    for rcpt in &env.rcpts {
        push_rcpt(&mut buf, rcpt);
    }
    command(&mut buf, &[b"DATA"]);
    buf
}

/// Reads the reply to an RSET sent to check a reused connection.
async fn expect_rset(conn: &mut Connection) -> Result<(), SmtpError> {
    let reply = live(conn.read_reply().await?)?;
    if reply.is_positive() {
        Ok(())
    } else {
        Err(SmtpError::Rset(reply))
    }
}

/// [RSET,] MAIL, every RCPT and DATA in one write (unless they rode along), then the
/// replies in order, with a stop open meanwhile.
async fn envelope_pipelined<'s>(
    conn: &mut Connection,
    msg: &Outgoing<'_>,
    start: Start,
    stops: Option<&'s Stops>,
    mail_accepted: &mut bool,
) -> Result<(Envelope, Option<Stop<'s>>), SmtpError> {
    if start != Start::Riding {
        if start == Start::Reused {
            command(&mut conn.wbuf, &[b"RSET"]);
        }
        push_mail(conn, msg);
        for rcpt in msg.rcpts {
            push_rcpt(&mut conn.wbuf, rcpt);
        }
        command(&mut conn.wbuf, &[b"DATA"]);
        conn.flush().await?;
    }
    let stop = stops.map(Stops::open);
    if start == Start::Reused {
        expect_rset(conn).await?;
    }
    let (mail, rcpts) = read_envelope(conn, msg.rcpts.len(), mail_accepted).await?;
    let data = live(conn.read_reply().await?)?;
    let envelope = Envelope {
        mail,
        rcpts,
        data: Some(data),
    };
    Ok((envelope, stop))
}

/// The pipelined replies to MAIL FROM and to `rcpts` RCPT TOs.
async fn read_envelope(
    conn: &mut Connection,
    rcpts: usize,
    mail_accepted: &mut bool,
) -> Result<(Reply, Vec<Reply>), SmtpError> {
    let mail = live(conn.read_reply().await?)?;
    *mail_accepted = mail.is_positive();
    let mut replies = Vec::with_capacity(rcpts);
    for _ in 0..rcpts {
        replies.push(live(conn.read_reply().await?)?);
    }
    Ok((mail, replies))
}

/// One command, one reply; DATA only when a recipient was accepted.
async fn envelope_lockstep(
    conn: &mut Connection,
    msg: &Outgoing<'_>,
    reused: bool,
    mail_accepted: &mut bool,
) -> Result<Envelope, SmtpError> {
    if reused {
        command(&mut conn.wbuf, &[b"RSET"]);
        conn.flush().await?;
        expect_rset(conn).await?;
    }
    push_mail(conn, msg);
    conn.flush().await?;
    let mail = live(conn.read_reply().await?)?;
    if !mail.is_positive() {
        return Ok(Envelope {
            mail,
            rcpts: Vec::new(),
            data: None,
        });
    }
    *mail_accepted = true;
    let mut rcpts = Vec::with_capacity(msg.rcpts.len());
    for rcpt in msg.rcpts {
        push_rcpt(&mut conn.wbuf, rcpt);
        conn.flush().await?;
        rcpts.push(live(conn.read_reply().await?)?);
    }
    let mut data = None;
    if rcpts.iter().any(Reply::is_positive) {
        command(&mut conn.wbuf, &[b"DATA"]);
        conn.flush().await?;
        data = Some(live(conn.read_reply().await?)?);
    }
    Ok(Envelope { mail, rcpts, data })
}

/// Sends the message when the envelope allows it (with the envelope of a rider that
/// boarded `stop` behind it) and maps every reply to outcomes. Without data to send, the
/// stop closes and its rider goes elsewhere.
async fn finish(
    conn: &mut Connection,
    msg: &Outgoing<'_>,
    envelope: Envelope,
    stop: Option<Stop<'_>>,
) -> Result<Done, SmtpError> {
    let Envelope { mail, rcpts, data } = envelope;
    if !mail.is_positive() {
        drop(stop);
        tracing::debug!(queue_id = msg.id, reply = %mail, "upstream refused MAIL FROM");
        let outcomes = vec![mail.outcome(); msg.rcpts.len()];
        let reusable = abandon(conn, data.as_ref()).await;
        return Ok(Done {
            outcomes,
            reusable,
            rider: None,
        });
    }
    let mut outcomes: Vec<RcptOutcome> = rcpts.iter().map(Reply::outcome).collect();
    let any_accepted = rcpts.iter().any(Reply::is_positive);
    let go_ahead = data.as_ref().is_some_and(|reply| reply.code == 354);
    if !any_accepted || !go_ahead {
        drop(stop);
        if let (true, Some(refusal)) = (any_accepted, data.as_ref()) {
            tracing::debug!(queue_id = msg.id, reply = %refusal, "upstream refused DATA");
            apply_to_accepted(&mut outcomes, &rcpts, refusal);
        }
        let reusable = abandon(conn, data.as_ref()).await;
        return Ok(Done {
            outcomes,
            reusable,
            rider: None,
        });
    }
    let rider = stop.and_then(Stop::take);
    let behind = rider.as_ref().map(|r| rider_envelope(conn.caps, r));
    conn.send_message_then(msg.data, behind.as_deref().unwrap_or_default())
        .await?;
    if let Some(rider) = &rider {
        tracing::debug!(queue_id = msg.id, rider = %rider.envelope.id, "envelope sent behind the data");
    }
    let last = live(conn.read_reply().await?)?;
    apply_to_accepted(&mut outcomes, &rcpts, &last);
    Ok(Done {
        outcomes,
        reusable: true,
        rider,
    })
}

/// [RSET,] MAIL, every RCPT and the message as one `BDAT <size> LAST` chunk in one write,
/// then every reply in order. The upstream reads (and throws away) the chunk even when it
/// refused the envelope, so the replies stay in step; a connection whose chunk was refused
/// is not reused all the same, in case a server got that wrong.
///
/// Unlike DATA, the message is complete before any reply is read: after a refused RSET
/// the MAIL reply says whether a transaction went ahead all the same. If it did, its
/// replies are the outcome (giving up would deliver it twice); if not, the connection
/// was unusable and a fresh one gets the message.
async fn chunked_transaction(
    conn: &mut Connection,
    msg: &Outgoing<'_>,
    reused: bool,
    mail_accepted: &mut bool,
) -> Result<Done, SmtpError> {
    if reused {
        command(&mut conn.wbuf, &[b"RSET"]);
    }
    push_mail(conn, msg);
    for rcpt in msg.rcpts {
        push_rcpt(&mut conn.wbuf, rcpt);
    }
    conn.send_last_chunk(msg.data).await?;
    let rset = match reused {
        true => Some(live(conn.read_reply().await?)?),
        false => None,
    };
    let (mail, rcpts) = read_envelope(conn, msg.rcpts.len(), mail_accepted).await?;
    if let Some(refused) = rset.filter(|r| !r.is_positive() && !mail.is_positive()) {
        return Err(SmtpError::Rset(refused));
    }
    let last = live(conn.read_reply().await?)?;
    let outcomes = match mail.is_positive() {
        false => {
            tracing::debug!(queue_id = msg.id, reply = %mail, "upstream refused MAIL FROM");
            vec![mail.outcome(); msg.rcpts.len()]
        }
        true => {
            let mut outcomes: Vec<RcptOutcome> = rcpts.iter().map(Reply::outcome).collect();
            apply_to_accepted(&mut outcomes, &rcpts, &last);
            outcomes
        }
    };
    Ok(Done {
        outcomes,
        reusable: last.is_positive(),
        rider: None,
    })
}

/// Recipients accepted at RCPT share the fate of a later reply; refused ones keep theirs.
fn apply_to_accepted(outcomes: &mut [RcptOutcome], rcpts: &[Reply], reply: &Reply) {
    for (outcome, rcpt) in outcomes.iter_mut().zip(rcpts) {
        if rcpt.is_positive() {
            *outcome = reply.outcome();
        }
    }
}

/// Ends a transaction that will carry no message: an empty data phase if the upstream
/// (wrongly) said 354 to a pipelined DATA, then RSET. Returns whether the connection is
/// clean; a failure here no longer changes the outcomes.
async fn abandon(conn: &mut Connection, data: Option<&Reply>) -> bool {
    let cleaned = async {
        if data.is_some_and(|reply| reply.code == 354) {
            conn.send_message(b"").await?;
            conn.read_reply().await?;
        }
        command(&mut conn.wbuf, &[b"RSET"]);
        conn.flush().await?;
        conn.read_reply().await
    };
    matches!(cleaned.await, Ok(reply) if reply.is_positive())
}
