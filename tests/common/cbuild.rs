//! Building the project's C programs in tests: where libdco is, compiler flags, scratch space.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put libdco.so and libdco.a for this profile: beside the `dco` binary. `cargo
/// test` alone does not build the C libraries (only `cargo build` does); then they are built
/// here, once, in a target directory of their own (the test's own is locked by cargo).
pub fn lib_dir() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_BIN_EXE_dco"))
        .parent()
        .expect("the dco binary has a directory")
        .to_path_buf();
    if !dir.join("libdco.so").is_file() || !dir.join("libdco.a").is_file() {
        static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        dir = BUILT
            .get_or_init(|| {
                let target = root().join("target").join("c-abi");
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let st = Command::new(cargo)
                    .args(["build", "--lib", "--target-dir"])
                    .arg(&target)
                    .current_dir(root())
                    .status()
                    .expect("run cargo build --lib");
                assert!(st.success(), "cargo build --lib failed");
                target.join("debug")
            })
            .clone();
    }
    for lib in ["libdco.so", "libdco.a"] {
        assert!(
            dir.join(lib).is_file(),
            "{} is missing: cargo should build the cdylib and staticlib with the tests",
            dir.join(lib).display()
        );
    }
    dir
}

/// A directory of our own under cargo's scratch space for integration tests; directories left by
/// earlier runs whose process is gone are removed.
pub fn out_dir(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let stale = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
                .is_some_and(|pid| {
                    // SAFETY: kill with signal 0 only checks whether the process exists.
                    let gone = unsafe { libc::kill(pid, 0) } != 0;
                    gone && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
                });
            if stale {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the output directory");
    dir
}

pub const STRICT: &[&str] = &[
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-g",
    "-O1",
];
pub const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];
