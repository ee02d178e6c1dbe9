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
