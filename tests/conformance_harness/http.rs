//! A raw HTTP/1.1 client: the request target goes out verbatim, one request
//! per connection, optionally over TLS (rustls, server certificate not
//! verified, optional client certificate).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use super::pki::ClientIdentity;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// What came back. `status == None` means "no HTTP answer" (`ERR`).
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: Option<u16>,
    pub location: Option<String>,
    pub body: Vec<u8>,
    /// Why there was no (complete) answer, for the report.
    pub problem: Option<String>,
}

impl Response {
    fn failed(problem: String) -> Self {
        Response {
            problem: Some(problem),
            ..Response::default()
        }
    }
}

/// A request ready to send.
pub struct Request {
    pub port: u16,
    pub method: String,
    /// Sent verbatim, e.g. `/update/update.php?...`.
    pub target: String,
    /// Extra headers; a header named like a default one replaces it.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// `None`: plain HTTP.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Request {
    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), format!("127.0.0.1:{}", self.port)),
            ("User-Agent".into(), "update-server-conformance".into()),
            ("Connection".into(), "close".into()),
        ];
        let body_len = self.body.as_ref().map(Vec::len);
        if body_len.is_some() || self.method == "PUT" || self.method == "POST" {
            headers.push(("Content-Length".into(), body_len.unwrap_or(0).to_string()));
        }
        for (name, value) in &self.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        out
    }

    /// Sends the request on a new connection and reads the answer.
    pub fn send(&self) -> Response {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port);
        let tcp = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => s,
            Err(e) => return Response::failed(format!("connect to {addr}: {e}")),
        };
        let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
        let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
        let _ = tcp.set_nodelay(true);
        let wire = self.encode();
        match &self.tls {
            None => exchange(tcp, &wire),
            Some(config) => {
                let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
                match ClientConnection::new(config.clone(), name) {
                    Ok(conn) => exchange(StreamOwned::new(conn, tcp), &wire),
                    Err(e) => Response::failed(format!("TLS setup: {e}")),
                }
            }
        }
    }
}

/// Writes the request, then reads one response.
fn exchange<S: Read + Write>(mut stream: S, wire: &[u8]) -> Response {
    let write_error = stream
        .write_all(wire)
        .and_then(|()| stream.flush())
        .err()
        .map(|e| format!("sending the request: {e}"));
    // Even after a failed write the server may have answered (e.g. it refused
    // the body early), so always try to read.
    let mut response = read_response(&mut stream);
    if response.status.is_none() {
        if let Some(w) = write_error {
            response.problem = Some(match response.problem {
                Some(r) => format!("{w}; {r}"),
                None => w,
            });
        }
    }
    response
}

/// Reads more bytes into `buf`; `Ok(false)` at end of stream. A TLS peer
/// closing without close_notify counts as end of stream.
fn fill<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_head(raw: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!("not an HTTP status line: {status_line:?}"));
    }
    let status = code
        .parse()
        .map_err(|_| format!("bad status code in {status_line:?}"))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(Head { status, headers })
}

/// Reads one HTTP/1.x response (skipping 1xx), honouring `Content-Length`,
/// `Transfer-Encoding: chunked`, or reading to the end of the stream.
pub fn read_response<S: Read>(stream: &mut S) -> Response {
    let mut buf = Vec::new();
    let head = loop {
        let end = find(&buf, b"\r\n\r\n")
            .map(|p| (p, p + 4))
            .or_else(|| find(&buf, b"\n\n").map(|p| (p, p + 2)));
        if let Some((head_end, body_start)) = end {
            let head = match parse_head(&buf[..head_end]) {
                Ok(h) => h,
                Err(e) => return Response::failed(e),
            };
            buf.drain(..body_start);
            if (100..200).contains(&head.status) {
                continue;
            }
            break head;
        }
        match fill(stream, &mut buf) {
            Ok(true) => {}
            Ok(false) if buf.is_empty() => {
                return Response::failed("connection closed without an HTTP answer".into());
            }
            Ok(false) => {
                return Response::failed(format!(
                    "connection closed inside the response head ({} bytes)",
                    buf.len()
                ));
            }
            Err(e) => return Response::failed(format!("reading the response: {e}")),
        }
    };

    let mut response = Response {
        status: Some(head.status),
        location: head.header("Location").map(str::to_string),
        ..Response::default()
    };
    let chunked = head
        .header("Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = head
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<usize>().ok());
    if head.status == 204 || head.status == 304 {
        return response;
    }
    loop {
        let complete = if chunked {
            match decode_chunked(&buf) {
                Ok(Some(body)) => {
                    response.body = body;
                    return response;
                }
                Ok(None) => false,
                Err(e) => {
                    response.problem = Some(e);
                    response.body = buf;
                    return response;
                }
            }
        } else if let Some(n) = length {
            buf.len() >= n
        } else {
            false
        };
        if complete {
            if let Some(n) = length {
                buf.truncate(n);
            }
            response.body = buf;
            return response;
        }
        match fill(stream, &mut buf) {
            Ok(true) => {}
            Ok(false) => {
                if chunked || length.is_some() {
                    response.problem = Some(format!(
                        "connection closed before the end of the body ({} bytes read)",
                        buf.len()
                    ));
                }
                if chunked {
                    buf = decode_chunked_partial(&buf);
                }
                response.body = buf;
                return response;
            }
            Err(e) => {
                response.problem = Some(format!("reading the body: {e}"));
                if chunked {
                    buf = decode_chunked_partial(&buf);
                }
                response.body = buf;
                return response;
            }
        }
    }
}

/// Decodes a complete chunked body; `Ok(None)` if more bytes are needed.
pub fn decode_chunked(raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find(&raw[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&raw[pos..pos + line_end]);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size line {line:?}"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let Some(end) = find(&raw[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some(body));
                }
            }
        }
        if raw.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

/// What a truncated chunked body decodes to (for the report only).
fn decode_chunked_partial(raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut pos = 0;
    while let Some(line_end) = find(&raw[pos..], b"\r\n") {
        let line = String::from_utf8_lossy(&raw[pos..pos + line_end]);
        let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or_default().trim(), 16)
        else {
            break;
        };
        pos += line_end + 2;
        let end = (pos + size).min(raw.len());
        body.extend_from_slice(&raw[pos..end]);
        if size == 0 || end < pos + size {
            break;
        }
        pos = (pos + size + 2).min(raw.len());
    }
    body
}

/// Accepts any server certificate (the runner does not verify the server)
/// but checks handshake signatures properly.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client configuration (ring provider), with or without a client
/// certificate.
pub fn tls_config(identity: Option<&ClientIdentity>) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)));
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key())
            .map_err(|e| format!("client certificate: {e}"))?,
    };
    Ok(Arc::new(config))
}
