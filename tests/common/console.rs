//! A console client over plain HTTP (no browser): logs in through the login form, keeps
//! the session cookie, and posts forms with the page's CSRF token, the way a browser
//! would. Browser tests use `browser`; these check what the server answers.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    /// The header block, as sent.
    pub head: String,
    pub body: String,
}

impl Page {
    /// The value of the first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// The value of the first hidden `csrf` field on the page.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        let rest = &self.body[at..];
        Some(rest[..rest.find('"')?].to_string())
    }
}

/// A browser-like client: cookies kept by name.
pub struct Console {
    pub api: SocketAddr,
    cookies: Vec<(String, String)>,
    /// Extra headers for every request (e.g. `Sec-Fetch-Site`).
    pub extra: Vec<(String, String)>,
    /// The CSRF token of the last page that had one.
    pub csrf: Option<String>,
}

impl Console {
    pub fn new(api: SocketAddr) -> Console {
        Console {
            api,
            cookies: Vec::new(),
            extra: Vec::new(),
            csrf: None,
        }
    }

    /// Logs in through the form; panics unless it ends on a console page.
    pub async fn login(api: SocketAddr, login: &str, password: &str) -> Console {
        let mut console = Console::new(api);
        let page = console.try_login(login, password).await;
        assert_eq!(page.status, 303, "login of {login} failed: {}", page.body);
        console
    }

    /// Submits the login form; returns the answer.
    pub async fn try_login(&mut self, login: &str, password: &str) -> Page {
        self.get("/console/login").await;
        self.post(
            "/console/login",
            &[("login", login), ("password", password)],
        )
        .await
    }

    /// The cookie `name`, if the client holds one.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    /// Posts an urlencoded form, adding `csrf` from the last page unless `fields` has one.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !fields.iter().any(|(k, _)| k == "csrf") {
            if let Some(token) = &self.csrf {
                fields.push(("csrf".into(), token.clone()));
            }
        }
        let body = form_encode(&fields);
        self.send("POST", path, Some(body)).await
    }

    /// One request with the cookies held; records cookies set and the page's CSRF token.
    pub async fn send(&mut self, method: &str, path: &str, body: Option<String>) -> Page {
        let mut stream = TcpStream::connect(self.api).await.unwrap();
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.api
        );
        if !cookie.is_empty() {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        for (k, v) in &self.extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or_default();
        if method != "GET" {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let page = Page {
            status,
            head: head.to_string(),
            body: dechunk(head, body),
        };
        self.keep_cookies(&page);
        if let Some(token) = page.csrf() {
            self.csrf = Some(token);
        }
        page
    }

    fn keep_cookies(&mut self, page: &Page) {
        for set in page.set_cookies() {
            let pair = set.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let removed = set.contains("Max-Age=0") || value.is_empty();
            self.cookies.retain(|(k, _)| k != name);
            if !removed {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body of a chunked answer, joined.
fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
