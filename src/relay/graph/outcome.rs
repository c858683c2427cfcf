//! Graph's answers as delivery outcomes (learn.microsoft.com/graph/api/user-sendmail,
//! /graph/errors, /graph/throttling): `202 Accepted` delivers to every recipient (Graph
//! takes the message whole or not at all); `429`, `503` and `504` defer, with the
//! `Retry-After` seconds Graph asks for; `401` is a token Graph no longer takes (an
//! authentication failure: the account is failing, the mail stays queued); `403` with
//! `ErrorSendAsDenied` (the app may not send as that mailbox) or any other `403` (such as
//! `ErrorAccessDenied`: no `Mail.Send` permission, or an application access policy) keeps
//! the mail queued and the account failing, as an SMTP send-as refusal does; `400`,
//! `413` and other `4xx` refuse the message for good, with Graph's error code and message;
//! other `5xx` and failed connections defer.

use crate::net::http::{HttpError, Response};
use crate::relay::{ErrorKind, RcptOutcome, RelayError, Retry, Side};
use std::time::Duration;

/// The longest `Retry-After` believed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Graph's error object (`{"error": {"code", "message"}}`) as `code: message`.
pub fn error_text(response: &Response) -> String {
    let json: serde_json::Value = serde_json::from_slice(&response.bytes).unwrap_or_default();
    let error = &json["error"];
    match (error["code"].as_str(), error["message"].as_str()) {
        (Some(code), Some(message)) if !message.is_empty() => format!("{code}: {message}"),
        (Some(code), _) => code.to_string(),
        _ => "no error object".to_string(),
    }
}

/// What a `sendMail` answer means for an attempt to `rcpts` recipients.
pub fn of_send(response: &Response, rcpts: usize) -> Result<Vec<RcptOutcome>, RelayError> {
    let status = response.status;
    if (200..300).contains(&status) {
        let reply = format!("{status} Accepted by Microsoft Graph");
        return Ok(vec![RcptOutcome::Delivered(reply); rcpts]);
    }
    let detail = format!(
        "HTTP {status} from Microsoft Graph: {}",
        error_text(response)
    );
    let error = |kind, retry, text: String| Err(RelayError::new(kind, Side::Upstream, retry, text));
    match status {
        429 | 503 | 504 => {
            let wait = retry_after(response);
            let what = match status {
                429 => "Microsoft Graph throttled the mailbox",
                _ => "Microsoft Graph is unavailable",
            };
            let after = wait
                .map(|w| format!("; retry after {} s", w.as_secs()))
                .unwrap_or_default();
            let error = RelayError::new(
                ErrorKind::Rejected,
                Side::Upstream,
                Retry::Later,
                format!("{what} ({detail}){after}"),
            );
            Err(match wait {
                Some(wait) => error.with_retry_after(wait),
                None => error,
            })
        }
        401 => error(
            ErrorKind::Auth,
            Retry::Later,
            format!("access token refused ({detail})"),
        ),
        403 if detail.contains("ErrorSendAsDenied") => {
            error(ErrorKind::Rejected, Retry::Later, detail)
        }
        403 => error(
            ErrorKind::Auth,
            Retry::Later,
            format!("not allowed to send ({detail})"),
        ),
        408 => error(ErrorKind::Timeout, Retry::Later, detail),
        400..=499 => error(ErrorKind::Rejected, Retry::Never, detail),
        _ => error(ErrorKind::Protocol, Retry::Later, detail),
    }
}

/// A request that got no answer: temporary, of the kind the failure was.
pub fn of_http(error: &HttpError) -> RelayError {
    let kind = match error {
        HttpError::Url(_) => ErrorKind::Protocol,
        HttpError::Connect(..) => ErrorKind::Connect,
        HttpError::Tls(..) => ErrorKind::Tls,
        HttpError::Timeout(_) => ErrorKind::Timeout,
        HttpError::Read(_) => ErrorKind::Io,
    };
    let side = match kind {
        ErrorKind::Protocol => Side::Local,
        _ => Side::Upstream,
    };
    RelayError::new(
        kind,
        side,
        Retry::Later,
        format!("Microsoft Graph: {error}"),
    )
}

/// Whether a request that failed this way may have reached Graph whole (the answer, not
/// the request, was lost): then the message may have been sent.
pub fn maybe_sent(error: &HttpError) -> bool {
    matches!(error, HttpError::Timeout(_) | HttpError::Read(_))
}

/// `Retry-After` in seconds (Graph sends seconds), at most an hour.
fn retry_after(response: &Response) -> Option<Duration> {
    let secs: u64 = response.header("retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::health;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
            bytes: body.as_bytes().to_vec(),
        }
    }

    fn graph_error(code: &str, message: &str) -> String {
        format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#)
    }

    fn class(result: &Result<Vec<RcptOutcome>, RelayError>) -> Option<&'static str> {
        health::classify(result).map(|o| o.class)
    }

    #[test]
    fn accepted_delivers_every_recipient() {
        let result = of_send(&answer(202, &[], ""), 2);
        assert_eq!(
            result.as_ref().unwrap(),
            &vec![RcptOutcome::Delivered("202 Accepted by Microsoft Graph".into()); 2]
        );
        assert_eq!(class(&result), Some("ok"));
    }

    #[test]
    fn throttling_defers_for_as_long_as_graph_asks() {
        let body = graph_error(
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        );
        let result = of_send(&answer(429, &[("retry-after", "7")], &body), 1);
        let error = result.as_ref().unwrap_err();
        assert!(error.is_temporary());
        assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
        assert!(
            error.message.contains("ApplicationThrottled")
                && error.message.contains("retry after 7 s"),
            "{error}"
        );
        assert_eq!(class(&result), Some("rate_limited"));
        let unavailable = of_send(&answer(503, &[("Retry-After", "120")], ""), 1).unwrap_err();
        assert_eq!(unavailable.retry_after, Some(Duration::from_secs(120)));
        let long = of_send(&answer(504, &[("retry-after", "999999")], ""), 1).unwrap_err();
        assert_eq!(long.retry_after, Some(MAX_RETRY_AFTER));
        assert_eq!(
            of_send(&answer(429, &[], ""), 1).unwrap_err().retry_after,
            None
        );
    }

    #[test]
    fn refused_tokens_and_send_as_keep_mail_and_fail_the_account() {
        let denied = graph_error("ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.");
        let result = of_send(&answer(403, &[], &denied), 1);
        assert!(result.as_ref().unwrap_err().is_temporary());
        assert_eq!(class(&result), Some("send_as_denied"));
        let access = of_send(
            &answer(
                403,
                &[],
                &graph_error("ErrorAccessDenied", "Access is denied."),
            ),
            1,
        );
        assert_eq!(class(&access), Some("auth_failure"));
        let token = of_send(
            &answer(
                401,
                &[],
                &graph_error("InvalidAuthenticationToken", "Access token has expired."),
            ),
            1,
        );
        assert_eq!(token.as_ref().unwrap_err().kind, ErrorKind::Auth);
        assert_eq!(class(&token), Some("auth_failure"));
        assert!(health::classify(&token).unwrap().holds_mail());
    }

    #[test]
    fn bad_requests_bounce_with_graphs_words_and_server_errors_defer() {
        let body = graph_error(
            "ErrorMimeContentInvalidBase64String",
            "Invalid base64 string for MIME content.",
        );
        let bad = of_send(&answer(400, &[], &body), 1).unwrap_err();
        assert!(!bad.is_temporary());
        assert!(
            bad.message.contains("HTTP 400") && bad.message.contains("Invalid base64 string"),
            "{bad}"
        );
        assert!(!of_send(&answer(413, &[], "too large"), 1)
            .unwrap_err()
            .is_temporary());
        assert!(of_send(&answer(500, &[], ""), 1)
            .unwrap_err()
            .is_temporary());
        assert!(of_send(&answer(502, &[], "<html>"), 1)
            .unwrap_err()
            .message
            .contains("no error object"));
        let lost = HttpError::Timeout(30);
        assert!(maybe_sent(&lost) && of_http(&lost).is_temporary());
        assert!(!maybe_sent(&HttpError::Connect(
            "g:443".into(),
            "refused".into()
        )));
    }
}
