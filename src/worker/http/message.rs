//! The HTTP worker's bodies: a request body is an HTTP/1.1 request message, a reply body an
//! HTTP/1.1 response message. Parsing assumes hostile bytes: every failure is a clear message.

use std::fmt::Write as _;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path (with its query), relative to the worker's base URL.
    Path(String),
    /// An absolute `http://` or `https://` URL; allowed only for hosts on the allow-list.
    Absolute(String),
}

/// A request message taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage<'a> {
    /// The method, as written (`GET`, `POST`...).
    pub method: &'a str,
    /// Where it goes.
    pub target: Target,
    /// Header lines in order, hop-by-hop ones left out (the worker sets those itself).
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body: everything after the empty line, as is.
    pub body: &'a [u8],
}

/// Headers a request message may carry but the worker sets (or leaves out) itself: the
/// connection's own and the body's framing, which the worker computes.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "content-length",
    "host",
    "trailer",
];

/// Whether a response header is dropped from the reply: the body has been de-chunked and is
/// given whole, with its own Content-Length.
pub fn dropped_response_header(name: &str) -> bool {
    [
        "transfer-encoding",
        "content-length",
        "connection",
        "keep-alive",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Longest request line, and longest header section, accepted.
const MAX_HEAD: usize = 64 * 1024;

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Splits off the next line (up to LF, without the LF and a CR before it) and the rest; the
/// last line may end without LF.
fn next_line(input: &[u8]) -> (&[u8], &[u8], bool) {
    match input.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let line = &input[..i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (line, &input[i + 1..], true)
        }
        None => (input, &[], false),
    }
}

/// Parses a request message. Lines may end in LF or CRLF; blank lines before the request
/// line are skipped; a message that ends without the empty line has no body.
pub fn parse_request(input: &[u8]) -> Result<RequestMessage<'_>, String> {
    let mut rest = input;
    // Skip blank lines before the request line (RFC 9112 2.2).
    let request_line = loop {
        if rest.is_empty() {
            return Err(
                "the request body is empty: expected a request line such as \
                        'GET /path HTTP/1.1'"
                    .into(),
            );
        }
        let (line, r, _) = next_line(rest);
        rest = r;
        if !line.is_empty() {
            break line;
        }
    };
    if request_line.len() > MAX_HEAD {
        return Err(format!("the request line is longer than {MAX_HEAD} bytes"));
    }
    let request_line = std::str::from_utf8(request_line)
        .map_err(|_| "the request line is not UTF-8 text".to_string())?;
    let mut parts = request_line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "malformed request line '{}': expected 'METHOD PATH HTTP/1.1'",
            shown(request_line)
        ));
    };
    if let Some(version) = parts.next() {
        if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
            return Err(format!(
                "unsupported version '{}' in the request line (HTTP/1.1 or HTTP/1.0)",
                shown(version)
            ));
        }
    }
    if parts.next().is_some() {
        return Err(format!(
            "malformed request line '{}': expected 'METHOD PATH HTTP/1.1'",
            shown(request_line)
        ));
    }
    if !is_token(method) {
        return Err(format!("'{}' is not an HTTP method", shown(method)));
    }
    let target = parse_target(target)?;

    let mut headers = Vec::new();
    let mut head_len = request_line.len();
    let body = loop {
        if rest.is_empty() {
            break rest;
        }
        let (line, r, _) = next_line(rest);
        rest = r;
        if line.is_empty() {
            break rest;
        }
        head_len += line.len();
        if head_len > MAX_HEAD {
            return Err(format!(
                "the header section is longer than {MAX_HEAD} bytes"
            ));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err("folded header lines (starting with a space) are not supported".into());
        }
        let line =
            std::str::from_utf8(line).map_err(|_| "a header line is not UTF-8 text".to_string())?;
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "malformed header line '{}': expected 'Name: value'",
                shown(line)
            ));
        };
        if !is_token(name) {
            return Err(format!("'{}' is not a header name", shown(name)));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(format!(
                "the value of header '{name}' has control characters"
            ));
        }
        if !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            headers.push((name, value));
        }
    };
    Ok(RequestMessage {
        method,
        target,
        headers,
        body,
    })
}

fn parse_target(t: &str) -> Result<Target, String> {
    if t.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the request target has control characters".into());
    }
    if let Some(scheme) = scheme_of(t) {
        if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            return Ok(Target::Absolute(t.to_string()));
        }
        return Err(format!(
            "'{}': only http:// and https:// URLs are allowed",
            shown(t)
        ));
    }
    let path = if t.starts_with('/') {
        t.to_string()
    } else {
        format!("/{t}")
    };
    // A path is relative to the base URL and may not climb out of it.
    let only_path = path.split(['?', '#']).next().unwrap_or("");
    if only_path.split('/').any(is_dot_dot) {
        return Err(format!(
            "the path '{}' climbs out of the base URL ('..')",
            shown(t)
        ));
    }
    Ok(Target::Path(path))
}

/// The scheme of an absolute URL (`scheme://...`, the scheme a letter then letters, digits,
/// `+`, `-` or `.`); None for anything else, which is a path.
fn scheme_of(t: &str) -> Option<&str> {
    let (scheme, _) = t.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// Whether a path segment means "..", also when percent-encoded.
fn is_dot_dot(seg: &str) -> bool {
    let s = seg.to_ascii_lowercase().replace("%2e", ".");
    s == ".."
}

/// The base URL joined with a relative path: `http://h/api` + `/sms?x=1` is
/// `http://h/api/sms?x=1`.
pub fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// At most 200 characters of `s`, for messages.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// Writes an HTTP/1.1 response message: status line, headers, an empty line, the body.
pub fn write_response<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let reason = reason(status);
    let mut head = String::with_capacity(256);
    let _ = write!(head, "HTTP/1.1 {status} {reason}\r\n");
    out.extend_from_slice(head.as_bytes());
    for (name, value) in headers {
        if dropped_response_header(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

/// A response made by the worker itself (the request never reached the service, or its
/// answer could not be passed on): `x-dco-error` names why, the body says it in words.
pub fn worker_response(status: u16, code: &str, words: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + words.len());
    write_response(
        status,
        [
            ("content-type", &b"text/plain; charset=utf-8"[..]),
            ("x-dco-error", code.as_bytes()),
        ],
        words.as_bytes(),
        &mut out,
    );
    out
}

/// The standard reason phrase of a status code ("" when it has none).
pub fn reason(status: u16) -> &'static str {
    http_reason(status).unwrap_or("")
}

fn http_reason(status: u16) -> Option<&'static str> {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A parsed request written back out as a message.
    fn written(m: &RequestMessage<'_>) -> Vec<u8> {
        let target = match &m.target {
            Target::Path(p) | Target::Absolute(p) => p.clone(),
        };
        let mut out = format!("{} {target} HTTP/1.1\r\n", m.method).into_bytes();
        for (n, v) in &m.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(m.body);
        out
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(m) = parse_request(&data) {
                prop_assert!(data.ends_with(m.body));
                let again = written(&m);
                prop_assert_eq!(parse_request(&again).unwrap(), m);
            }
        }

        #[test]
        fn written_requests_parse_back(
            method in "[A-Z]{1,8}",
            path in "/[a-z0-9/?=&%._-]{0,40}",
            headers in proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,30}"), 0..6),
            body in proptest::collection::vec(any::<u8>(), 0..200),
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut msg = format!("{method} {path} HTTP/1.1{eol}").into_bytes();
            for (n, v) in &headers {
                msg.extend_from_slice(format!("{n}: {v}{eol}").as_bytes());
            }
            msg.extend_from_slice(eol.as_bytes());
            msg.extend_from_slice(&body);
            match parse_request(&msg) {
                Ok(m) => {
                    prop_assert_eq!(m.method, method.as_str());
                    prop_assert_eq!(m.body, &body[..]);
                    let kept = headers
                        .iter()
                        .filter(|(n, _)| !HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h)))
                        .count();
                    prop_assert_eq!(m.headers.len(), kept);
                }
                // Only a path that climbs out ('..') is refused.
                Err(e) => prop_assert!(e.contains(".."), "{}", e),
            }
        }
    }

    #[test]
    fn lf_and_crlf_lines() {
        let m = parse_request(b"POST /sms?to=1 HTTP/1.1\nContent-Type: text/plain\n\nhello\r\n")
            .unwrap();
        assert_eq!(m.method, "POST");
        assert_eq!(m.target, Target::Path("/sms?to=1".into()));
        assert_eq!(m.headers, vec![("Content-Type", "text/plain")]);
        assert_eq!(m.body, b"hello\r\n");
        let m = parse_request(b"\r\nGET /a HTTP/1.1\r\nX-A:  1 \r\n\r\n").unwrap();
        assert_eq!(m.headers, vec![("X-A", "1")]);
        assert_eq!(m.body, b"");
    }

    #[test]
    fn no_empty_line_means_no_body_and_version_is_optional() {
        let m = parse_request(b"GET status").unwrap();
        assert_eq!(m.target, Target::Path("/status".into()));
        assert!(m.body.is_empty());
        let m = parse_request(b"DELETE /x HTTP/1.1\nAccept: */*\n").unwrap();
        assert_eq!(m.headers, vec![("Accept", "*/*")]);
    }

    #[test]
    fn framing_headers_are_the_workers() {
        let m = parse_request(b"PUT /x HTTP/1.1\nContent-Length: 99\nHost: evil\nX-Ok: 1\n\nab")
            .unwrap();
        assert_eq!(m.headers, vec![("X-Ok", "1")]);
        assert_eq!(m.body, b"ab");
    }

    #[test]
    fn absolute_urls_and_paths_that_climb() {
        assert_eq!(
            parse_request(b"GET https://api.example.com/v1 HTTP/1.1\n\n")
                .unwrap()
                .target,
            Target::Absolute("https://api.example.com/v1".into())
        );
        for bad in [
            &b"GET /a/../admin HTTP/1.1\n\n"[..],
            b"GET /a/%2E%2e/admin HTTP/1.1\n\n",
            b"GET ftp://x/ HTTP/1.1\n\n",
            b"GET /x HTTP/9\n\n",
            b"G@T /x\n\n",
            b"GET\n\n",
            b"",
            b"\n\n\n",
            b"GET /x HTTP/1.1\nno colon\n\n",
            b"GET /x HTTP/1.1\n folded: x\n\n",
            b"GET /x HTTP/1.1\nBad Name: x\n\n",
            b"GET /x HTTP/1.1\nX: a\x01b\n\n",
            b"GET /\xff HTTP/1.1\n\n",
        ] {
            let e = parse_request(bad).unwrap_err();
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn a_path_with_a_colon_slash_slash_is_a_path_both_times() {
        // Found by the fuzzer: "://" after non-scheme characters made the first parse call it
        // a path and the second (with its leading '/') a foreign URL.
        let m = parse_request("z%$v+%% ~~$\u{285}^\u{285}://$".as_bytes()).unwrap();
        assert_eq!(m.target, Target::Path("/~~$\u{285}^\u{285}://$".into()));
        let again = written(&m);
        assert_eq!(parse_request(&again).unwrap(), m);
        assert!(parse_request(b"GET FTP://x/ HTTP/1.1\n\n").is_err());
        assert_eq!(
            parse_request(b"GET HtTpS://x/y HTTP/1.1\n\n")
                .unwrap()
                .target,
            Target::Absolute("HtTpS://x/y".into())
        );
    }

    #[test]
    fn join_keeps_the_base_path() {
        assert_eq!(
            join("http://h:1/api/", "/sms?x=1"),
            "http://h:1/api/sms?x=1"
        );
        assert_eq!(join("http://h:1", "/"), "http://h:1/");
    }

    #[test]
    fn response_message() {
        let mut out = Vec::new();
        write_response(
            404,
            [
                ("x-a", &b"1"[..]),
                ("transfer-encoding", b"chunked"),
                ("content-length", b"7"),
            ],
            b"nope",
            &mut out,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nx-a: 1\r\ncontent-length: 4\r\n\r\nnope".to_vec()
        );
        let w = worker_response(400, "malformed-request", "bad");
        assert!(w.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(w.ends_with(b"x-dco-error: malformed-request\r\ncontent-length: 3\r\n\r\nbad"));
    }
}
