//! The C library installed like libpq: `make install` into a temporary prefix, then a C program
//! built with nothing but `pkg-config --cflags --libs dco`, run against a real hub. The build
//! of this test profile is installed (PROFILE=debug or release, whichever this test runs in).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::cbuild::{lib_dir, root};
use common::{echo_worker, Hub, TempDir};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = run(Command::new("pkg-config")
        .args(args)
        .arg("dco")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .env_remove("PKG_CONFIG_LIBDIR"));
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn make_install_gives_a_library_that_pkg_config_users_can_build_and_run() {
    let dir = TempDir::new("install");
    let prefix = dir.path().join("prefix");
    let profile = lib_dir()
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    run(Command::new("make")
        .current_dir(root())
        .args(["--no-print-directory", "install"])
        .arg(format!("PROFILE={profile}"))
        .arg(format!("BUILD={}", lib_dir().display()))
        .arg(format!("DCO_BIN={}", env!("CARGO_BIN_EXE_dco")))
        .arg(format!("PREFIX={}", prefix.display())));

    let version = env!("CARGO_PKG_VERSION");
    let lib = prefix.join("lib");
    let real = lib.join(format!("libdco.so.{version}"));
    for f in [
        real.clone(),
        lib.join("libdco.so.0"),
        lib.join("libdco.so"),
        lib.join("libdco.a"),
        lib.join("pkgconfig/dco.pc"),
        lib.join(format!(".debug/libdco.so.{version}.debug")),
        prefix.join("include/dco.h"),
        prefix.join("bin/dco"),
    ] {
        assert!(f.exists(), "{} was not installed", f.display());
    }
    assert_eq!(
        std::fs::read_link(lib.join("libdco.so.0")).unwrap(),
        Path::new(&format!("libdco.so.{version}"))
    );
    // Its SONAME, and no debug information in the installed library (it is in lib/debug).
    let dynamic = run(Command::new("objdump").arg("-p").arg(&real));
    assert!(
        dynamic.contains("SONAME               libdco.so.0"),
        "{dynamic}"
    );
    let sections = run(Command::new("objdump").arg("-h").arg(&real));
    assert!(!sections.contains(".debug_info"), "{sections}");
    assert!(sections.contains(".gnu_debuglink"), "{sections}");

    // A program built with pkg-config's flags only.
    let cflags = pkg_config(&prefix, &["--cflags", "--libs"]);
    assert!(
        cflags.contains(&"-ldco".to_string()),
        "pkg-config says {cflags:?}"
    );
    let prog = dir.path().join("call_sync");
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(root().join("c_examples/call_sync.c"))
        .arg("-o")
        .arg(&prog)
        .args(&cflags));
    let needed = run(Command::new("objdump").arg("-p").arg(&prog));
    assert!(
        needed.contains("NEEDED               libdco.so.0"),
        "{needed}"
    );
    // And linked statically, with the private libraries pkg-config lists.
    let static_libs = pkg_config(&prefix, &["--static", "--libs-only-l"]);
    let prog_static = dir.path().join("call_sync_static");
    run(Command::new("cc")
        .args(["-std=c11"])
        .arg(root().join("c_examples/call_sync.c"))
        .arg("-o")
        .arg(&prog_static)
        .args(pkg_config(&prefix, &["--cflags"]))
        .arg(lib.join("libdco.a"))
        .args(static_libs.iter().filter(|l| *l != "-ldco")));

    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
    for p in [&prog, &prog_static] {
        let out = run(Command::new(p)
            .args(["5", "installed"])
            .env("DCO_HUB", &hub.addr)
            .env("LD_LIBRARY_PATH", &lib)
            .stdin(Stdio::null()));
        assert_eq!(out, "installed\n", "{}", p.display());
    }
    let version_out = run(Command::new(prefix.join("bin/dco")).arg("--version"));
    assert!(version_out.contains(version), "{version_out}");

    run(Command::new("make")
        .current_dir(root())
        .args(["--no-print-directory", "uninstall"])
        .arg(format!("PREFIX={}", prefix.display())));
    assert!(!real.exists() && !prefix.join("include/dco.h").exists());
}
