//! Generates the C header with cbindgen into OUT_DIR. `DCO_BLESS_HEADER=1 cargo build` also
//! writes it to include/dco.h; the test `header_is_current` fails when the committed header
//! differs from the generated one.

use std::path::PathBuf;

fn main() {
    // The header is generated from the whole crate (cbindgen reads every module).
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=DCO_BLESS_HEADER");
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("dco.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
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
