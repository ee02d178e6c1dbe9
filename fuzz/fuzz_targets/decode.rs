//! Feeds arbitrary bytes to `dco::wire::decode` the way the hub's read loop does: decode a
//! frame, advance past it, repeat, until the bytes run out, a frame is incomplete, or an error.
//! The first input byte picks the frame limit, so small limits (where every length is "too
//! large") and huge ones (where lengths near 4 GiB must wait, not overflow) are both exercised.
//! Beyond "no panic", it checks what the codec promises: a frame uses at least its header and
//! no more than the input, an incomplete frame stays incomplete when cut shorter, and
//! decoding only depends on the frame's own bytes.

#![no_main]

use dco::wire::{self, Frame};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = 8;

fn limit(selector: u8) -> u32 {
    match selector % 5 {
        0 => 0,
        1 => 64,
        2 => 1 << 20,
        3 => wire::DEFAULT_MAX_FRAME,
        _ => u32::MAX,
    }
}

fn walk(buf: &[u8], max: u32) {
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        match wire::decode(rest, max) {
            Ok(Some((frame, n))) => {
                assert!(
                    n >= HEADER && n <= rest.len(),
                    "frame of {n} bytes from {}",
                    rest.len()
                );
                let declared = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                assert_eq!(n, HEADER + declared);
                // Same frame from exactly its own bytes.
                let (again, m) = wire::decode(&rest[..n], max).unwrap().unwrap();
                assert_eq!(m, n);
                assert_eq!(again, frame);
                touch(&frame);
                pos += n;
            }
            Ok(None) => {
                // Still incomplete when cut shorter.
                if !rest.is_empty() {
                    assert_eq!(wire::decode(&rest[..rest.len() - 1], max), Ok(None));
                }
                return;
            }
            Err(_) => return,
        }
    }
}

/// Reads every field, so nothing the decoder hands out is left unchecked by the sanitizers.
fn touch(f: &Frame<'_>) {
    // A request that names a service: the hub splits the name off its body.
    if let Frame::Request { flags, body, .. } = f {
        if flags & wire::REQ_SERVICE != 0 {
            std::hint::black_box(wire::split_service(body));
        }
    }
    let n = match f {
        Frame::Hello(h) => h.name.len() + h.secret.len() + h.proxies.len(),
        Frame::Refuse { message, .. } | Frame::Quit { message } => message.len(),
        Frame::Request { body, .. }
        | Frame::Reply { body, .. }
        | Frame::Deliver { body, .. }
        | Frame::Forward { body, .. }
        | Frame::Result { body, .. } => body.len(),
        Frame::Done { ids } => {
            assert_eq!(ids.len() % 8, 0);
            ids.len()
        }
        Frame::Stats { json } => json.len(),
        _ => 0,
    };
    std::hint::black_box(n);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    walk(rest, limit(selector));
    // The same bytes under the largest limit: long declared lengths wait instead of failing.
    walk(rest, u32::MAX);
});
