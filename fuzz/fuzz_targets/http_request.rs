//! Feeds arbitrary bytes to the HTTP worker's request parser, as a request body from a caller
//! would arrive. Beyond "no panic": what it returns must point into the input (the body is a
//! suffix of it), headers it keeps are tokens without the framing ones the worker sets itself,
//! and a parsed request written back out as a message parses to the same request.

#![no_main]

use dco::worker::http::message::{parse_request, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = parse_request(data) else {
        return;
    };
    assert!(data.ends_with(m.body));
    assert!(!m.method.is_empty());
    for (n, v) in &m.headers {
        assert!(!n.is_empty() && !n.eq_ignore_ascii_case("content-length"));
        assert!(!v.contains('\n'));
    }
    let target = match &m.target {
        Target::Path(p) => {
            assert!(p.starts_with('/'));
            p.clone()
        }
        Target::Absolute(a) => a.clone(),
    };
    let mut again = format!("{} {} HTTP/1.1\r\n", m.method, target).into_bytes();
    for (n, v) in &m.headers {
        again.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    again.extend_from_slice(b"\r\n");
    if again.len() > 60_000 {
        return; // near the header-size limit, the longer line ends could pass it
    }
    again.extend_from_slice(m.body);
    let m2 = parse_request(&again).expect("a written-out request parses");
    assert_eq!(m2, m);
});
