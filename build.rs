//! Generates the C header with cbindgen into OUT_DIR. `DCO_BLESS_HEADER=1 cargo build` also
//! writes it to include/dco.h; the test `header_is_current` fails when the committed header
//! differs from the generated one.

use std::path::PathBuf;

fn main() {
    // The shared library's SONAME: programs record libdco.so.0 and keep working across
    // compatible updates (see the Makefile's install target).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdco.so.0");
    // So that a program linked with -ldco against the build tree (target/<profile>, as the
    // README and c_examples/Makefile do) finds that name at run time: libdco.so.0 -> libdco.so
    // beside it. OUT_DIR is target/<profile>/build/<pkg>-<hash>/out. Best effort.
    if let Some(profile_dir) = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|o| o.ancestors().nth(3).map(PathBuf::from))
    {
        let link = profile_dir.join("libdco.so.0");
        if std::fs::read_link(&link).is_err() {
            let _ = std::fs::remove_file(&link);
            #[cfg(unix)]
            let _ = std::os::unix::fs::symlink("libdco.so", &link);
        }
    }
    // The header is generated from the whole crate (cbindgen reads every module).
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=DCO_BLESS_HEADER");
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("dco.h");
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    // The result codes: one list, the `Status` enum, written out for C and for Rust.
    let codes = status_codes(&crate_dir.join("src/status.rs"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("status_codes.rs"), rust_consts(&codes))
        .expect("write status_codes.rs");
    config.after_includes = Some(c_defines(&codes));
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&out);
            if std::env::var("DCO_BLESS_HEADER").is_ok_and(|v| v == "1") {
                bindings.write_to_file(crate_dir.join("include/dco.h"));
            }
        }
        Err(e) => panic!("cbindgen could not generate include/dco.h: {e}"),
    }
}

/// One `Status` variant: its C name, value and documentation lines.
struct Code {
    name: String,
    value: i32,
    doc: Vec<String>,
}

/// Reads the variants of `pub enum Status` in src/status.rs: `/// doc` lines, then
/// `Name = value,`. Panics (failing the build) on anything else inside the enum.
fn status_codes(path: &std::path::Path) -> Vec<Code> {
    let text = std::fs::read_to_string(path).expect("read src/status.rs");
    let body = text
        .split_once("pub enum Status {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .expect("src/status.rs has `pub enum Status { ... }`");
    let mut codes = Vec::new();
    let mut doc = Vec::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        let (name, value) = line
            .trim_end_matches(',')
            .split_once('=')
            .unwrap_or_else(|| panic!("src/status.rs: unexpected line in Status: {line}"));
        let name = name.trim();
        let value: i32 = value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("src/status.rs: {name} has no number"));
        let c_name = if value == 0 {
            "DCO_OK".to_string()
        } else {
            let mut s = String::from("DCO_E_");
            for (i, ch) in name.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    s.push('_');
                }
                s.push(ch.to_ascii_uppercase());
            }
            s
        };
        codes.push(Code {
            name: c_name,
            value,
            doc: std::mem::take(&mut doc),
        });
    }
    codes
}

fn c_defines(codes: &[Code]) -> String {
    let mut s = String::new();
    for c in codes {
        s.push_str("\n/*\n");
        for d in &c.doc {
            s.push_str(&format!(" {d}\n"));
        }
        s.push_str(&format!(" */\n#define {} {}\n", c.name, c.value));
    }
    s
}

fn rust_consts(codes: &[Code]) -> String {
    let mut s = String::new();
    for c in codes {
        for d in &c.doc {
            s.push_str(&format!("/// {d}\n"));
        }
        s.push_str(&format!("pub const {}: i32 = {};\n", c.name, c.value));
    }
    s
}
