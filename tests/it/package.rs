//! The Debian package (`cargo deb`): what it holds, and that the generated files it ships
//! (`pkg/completions`, `pkg/man`) are what the binary prints today.
//!
//! Building the package needs `cargo-deb`. Without it the package test prints loudly that
//! it was skipped, unless `UPDATE_SERVER_PACKAGE_TESTS=required` (as in CI), when it fails.
//! `UPDATE_SERVER_BLESS=1` rewrites the generated files in `pkg/` instead of comparing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(args)
        .output()
        .expect("run update-server");
    assert!(out.status.success(), "{args:?}");
    out.stdout
}

#[test]
fn shipped_completions_and_man_page_are_up_to_date() {
    let files = [
        (
            &["completions", "bash"][..],
            "pkg/completions/update-server.bash",
        ),
        (
            &["completions", "zsh"][..],
            "pkg/completions/_update-server",
        ),
        (
            &["completions", "fish"][..],
            "pkg/completions/update-server.fish",
        ),
        (&["manpage"][..], "pkg/man/update-server.1"),
    ];
    let bless = std::env::var("UPDATE_SERVER_BLESS").is_ok_and(|v| v == "1");
    for (args, file) in files {
        let now = generated(args);
        let path = repo().join(file);
        if bless {
            std::fs::write(&path, &now).expect("write");
            continue;
        }
        let shipped = std::fs::read(&path).expect("shipped file");
        assert!(
            shipped == now,
            "{file} is out of date: run `UPDATE_SERVER_BLESS=1 cargo test --test it package::`"
        );
    }
}

fn cargo_deb_available() -> bool {
    Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn dpkg_deb(arg: &str, deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .arg(arg)
        .arg(deb)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "dpkg-deb {arg}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn extract(deb: &Path, file: &str, dir: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dir)
        .output()
        .expect("dpkg-deb -x");
    assert!(out.status.success());
    std::fs::read_to_string(dir.join(file)).expect(file)
}

/// Builds the package (debug profile: quick, as the test binary is built already).
fn build_deb(out_dir: &Path) -> PathBuf {
    let out = Command::new("cargo")
        .args(["deb", "--profile", "dev", "--fast", "--output"])
        .arg(out_dir)
        .current_dir(repo())
        .output()
        .expect("cargo deb");
    assert!(
        out.status.success(),
        "cargo deb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_dir(out_dir)
        .expect("output dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb")
}

#[test]
fn debian_package_holds_binary_service_and_starter_files() {
    if !cargo_deb_available() {
        let required = std::env::var("UPDATE_SERVER_PACKAGE_TESTS").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "cargo-deb is missing (cargo install cargo-deb --locked)"
        );
        eprintln!(
            "\n*** SKIPPED: the Debian package test needs cargo-deb (cargo install cargo-deb --locked) ***\n"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let deb = build_deb(dir.path());
    let contents = dpkg_deb("-c", &deb);
    for path in [
        "./usr/bin/update-server",
        "/systemd/system/update-server.service",
        "./etc/default/update-server",
        "./usr/share/man/man1/update-server.1",
        "./usr/share/bash-completion/completions/update-server",
        "./usr/share/zsh/vendor-completions/_update-server",
        "./usr/share/fish/vendor_completions.d/update-server.fish",
        "./usr/share/update-server/starter/config/user-config.xml",
        "./usr/share/update-server/starter/scripts/README-sample.txt",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    let info = dpkg_deb("-I", &deb);
    for part in [
        "Package: update-server",
        "postinst",
        "conffiles",
        "Depends:",
    ] {
        assert!(info.contains(part), "{part} missing:\n{info}");
    }
    let tree = dir.path().join("tree");
    let postinst_ctl = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(dir.path().join("control"))
        .status()
        .expect("dpkg-deb -e");
    assert!(postinst_ctl.success());
    let postinst = std::fs::read_to_string(dir.path().join("control/postinst")).expect("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(
        postinst.contains("if [ ! -e \"$ROOT/$f\" ]"),
        "seeds only missing files"
    );
    let conffiles =
        std::fs::read_to_string(dir.path().join("control/conffiles")).expect("conffiles");
    assert!(
        conffiles.contains("/etc/default/update-server"),
        "{conffiles}"
    );

    let unit_path = contents
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .find(|p| p.ends_with("systemd/system/update-server.service"))
        .expect("unit path")
        .trim_start_matches("./")
        .to_string();
    let unit = extract(&deb, &unit_path, &tree);
    for line in [
        "User=update-server",
        "EnvironmentFile=-/etc/default/update-server",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/update-server",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    let defaults =
        std::fs::read_to_string(tree.join("etc/default/update-server")).expect("default");
    assert!(defaults.contains("UPDATE_SERVER_ROOT=/var/lib/update-server"));
}
