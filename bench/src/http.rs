//! A minimal HTTP/1.1 client: one keep-alive connection per worker, requests written straight to
//! the socket and responses parsed with httparse, so that the load generator spends as little CPU
//! per request as possible (a first version on hyper's connection-level client reached only about
//! two thirds of this one's rate against the do-nothing baseline); plus a browser (a connection
//! with a cookie jar) for preparing inputs through the real flow.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request header: lower-case name, value.
pub type Header = (&'static str, String);

/// What came back: the status, the raw head (status line and headers) and the whole body.
pub struct Reply {
    pub status: u16,
    head: Vec<u8>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the body is not JSON")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Every value of header `name`.
    pub fn headers(&self, name: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.head)
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub fn location(&self) -> String {
        self.headers("location").into_iter().next().unwrap_or_default()
    }

    /// A short description for error samples: status and the start of the body.
    pub fn describe(&self) -> String {
        let snippet: String = self.text().chars().take(160).collect();
        format!("{} {}", self.status, snippet.replace('\n', " "))
    }

    pub fn contains(&self, needle: &[u8]) -> bool {
        self.body.windows(needle.len()).any(|w| w == needle)
    }
}

/// One keep-alive connection; reconnects when the server has closed it.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let mut conn =
            Conn { addr, host: addr.to_string(), stream: None, out: Vec::with_capacity(4096), buf: Vec::new() };
        conn.stream = Some(connect(addr).await?);
        Ok(conn)
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&mut self, method: &str, path: &str, headers: &[Header], body: &[u8]) -> anyhow::Result<Reply> {
        self.out.clear();
        write!(self.out, "{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.host)?;
        for (name, value) in headers {
            write!(self.out, "{name}: {value}\r\n")?;
        }
        if !body.is_empty() || method == "POST" {
            write!(self.out, "content-length: {}\r\n", body.len())?;
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        let reused = self.stream.is_some();
        match self.roundtrip().await {
            Ok(reply) => Ok(reply),
            // A kept-alive connection the server closed before reading anything: once more, anew.
            Err(e) if reused && self.buf.is_empty() && is_closed(&e) => {
                self.stream = None;
                self.roundtrip().await.inspect_err(|_| self.stream = None)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    async fn roundtrip(&mut self) -> anyhow::Result<Reply> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.addr).await?);
        }
        let stream = self.stream.as_mut().ok_or_else(|| anyhow!("no connection"))?;
        self.buf.clear();
        stream.write_all(&self.out).await?;
        let (status, head_len, framing, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = response.parse(&self.buf)? {
                let status = response.code.unwrap_or(0);
                let mut framing = Framing::UntilClose;
                let mut close = false;
                for h in response.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        framing = Framing::Length(std::str::from_utf8(h.value)?.trim().parse()?);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") && contains_word(h.value, b"chunked") {
                        framing = Framing::Chunked;
                    } else if h.name.eq_ignore_ascii_case("connection") && contains_word(h.value, b"close") {
                        close = true;
                    }
                }
                if status == 204 || status == 304 || (100..200).contains(&status) {
                    framing = Framing::Length(0);
                }
                break (status, head_len, framing, close);
            }
            read_more(stream, &mut self.buf).await?;
        };
        let body = match framing {
            Framing::Length(n) => {
                while self.buf.len() < head_len + n {
                    read_more(stream, &mut self.buf).await?;
                }
                self.buf[head_len..head_len + n].to_vec()
            }
            Framing::Chunked => {
                let mut body = Vec::new();
                let mut at = head_len;
                loop {
                    let (data_at, size) = loop {
                        match httparse::parse_chunk_size(&self.buf[at..]) {
                            Ok(httparse::Status::Complete((used, size))) => break (at + used, size as usize),
                            Ok(httparse::Status::Partial) => read_more(stream, &mut self.buf).await?,
                            Err(_) => bail!("bad chunked encoding"),
                        }
                    };
                    while self.buf.len() < data_at + size + 2 {
                        read_more(stream, &mut self.buf).await?;
                    }
                    if size == 0 {
                        // Skip any trailers up to the blank line.
                        while !self.buf[data_at..].windows(2).any(|w| w == b"\r\n") {
                            read_more(stream, &mut self.buf).await?;
                        }
                        break;
                    }
                    body.extend_from_slice(&self.buf[data_at..data_at + size]);
                    at = data_at + size + 2;
                }
                body
            }
            Framing::UntilClose => {
                let mut chunk = [0u8; 8192];
                loop {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                self.stream = None;
                self.buf[head_len..].to_vec()
            }
        };
        let head = self.buf[..head_len].to_vec();
        if close {
            self.stream = None;
        }
        Ok(Reply { status, head, body })
    }

    pub async fn get(&mut self, path: &str, headers: &[Header]) -> anyhow::Result<Reply> {
        self.send("GET", path, headers, &[]).await
    }

    pub async fn post(&mut self, path: &str, headers: &[Header], body: &[u8]) -> anyhow::Result<Reply> {
        self.send("POST", path, headers, body).await
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn contains_word(value: &[u8], word: &[u8]) -> bool {
    value.split(|b| *b == b',').any(|part| part.trim_ascii().eq_ignore_ascii_case(word))
}

fn is_closed(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        )
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 16384];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `application/x-www-form-urlencoded`.
pub fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

pub fn form_type() -> Header {
    ("content-type", "application/x-www-form-urlencoded".to_owned())
}

pub fn json_type() -> Header {
    ("content-type", "application/json".to_owned())
}

/// `client_secret_basic` (RFC 6749 §2.3.1: each part form-urlencoded, then base64).
pub fn basic_auth(client_id: &str, secret: &str) -> Header {
    let id = utf8_percent_encode(client_id, NON_ALPHANUMERIC);
    let secret = utf8_percent_encode(secret, NON_ALPHANUMERIC);
    ("authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
}

pub fn bearer(token: &str) -> Header {
    ("authorization", format!("Bearer {token}"))
}

/// The value of query parameter `name` in a URL or path.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
    })
}

/// The value of the first `<input ... name="NAME" value="...">` in a page.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x2F;", "/"))
}

/// The first selectable `<option value="...">` of a page (the consent page's workspace picker).
pub fn first_option(html: &str) -> Option<String> {
    html.split("<option value=\"")
        .skip(1)
        .find(|chunk| !chunk.split('>').next().unwrap_or("").contains("disabled"))
        .and_then(|chunk| chunk.split('"').next())
        .map(str::to_owned)
}

/// A connection with a cookie jar that follows no redirects, like the test suite's browser.
pub struct Browser {
    pub conn: Conn,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub async fn open(addr: SocketAddr, cookies: BTreeMap<String, String>) -> anyhow::Result<Browser> {
        Ok(Browser { conn: Conn::open(addr).await?, cookies })
    }

    pub fn cookie_header(&self) -> Option<Header> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(("cookie", self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")))
    }

    fn remember(&mut self, reply: &Reply) {
        for text in reply.headers("set-cookie") {
            let pair = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.to_ascii_lowercase().contains("max-age=0") {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        let headers: Vec<Header> = self.cookie_header().into_iter().collect();
        let reply = self.conn.get(path, &headers).await?;
        self.remember(&reply);
        Ok(reply)
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<Reply> {
        let mut headers = vec![form_type()];
        headers.extend(self.cookie_header());
        let reply = self.conn.post(path, &headers, &form(fields)).await?;
        self.remember(&reply);
        Ok(reply)
    }

    /// `GET /login`, then `POST /login` with its CSRF token; keeps the session cookie.
    pub async fn log_in(&mut self, email: &str, password: &str) -> anyhow::Result<()> {
        let page = self.get("/login").await?;
        if page.status != 200 {
            bail!("GET /login answered {}", page.describe());
        }
        let csrf =
            hidden_value(&page.text(), "csrf_token").ok_or_else(|| anyhow!("the login page has no CSRF token"))?;
        let reply = self
            .post_form("/login", &[("csrf_token", &csrf), ("email", email), ("password", password), ("next", "/")])
            .await?;
        if reply.status != 303 {
            bail!("logging in as {email} answered {}", reply.describe());
        }
        Ok(())
    }
}
