//! Compiles DM's `pb` protocol (proto/dmmaster.proto, proto/dmworker.proto) with tonic-prost-build
//! and records build facts (commit, branch, build time, rustc) for `dmctl -V`.

use std::process::Command;

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "None".to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/dmmaster.proto");
    println!("cargo:rerun-if-changed=proto/dmworker.proto");
    println!("cargo:rerun-if-changed=proto/dmrs.proto");
    println!("cargo:rerun-if-changed=.git/HEAD");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Carry a password or a key: their Debug is written by hand (src/lib.rs) and masks it.
        .skip_debug([
            "pb.GetCfgRequest",
            "pb.EncryptRequest",
            "pb.RegisterWorkerResponse",
            "dmrs.AssignRequest",
        ])
        .compile_protos(
            &[
                "proto/dmmaster.proto",
                "proto/dmworker.proto",
                "proto/dmrs.proto",
            ],
            &["proto"],
        )?;

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "None".into());
    let build_time = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "None".into());
    println!(
        "cargo:rustc-env=DM_GIT_HASH={}",
        git(&["rev-parse", "HEAD"])
    );
    println!(
        "cargo:rustc-env=DM_GIT_BRANCH={}",
        git(&["rev-parse", "--abbrev-ref", "HEAD"])
    );
    println!("cargo:rustc-env=DM_BUILD_TIME={build_time}");
    println!("cargo:rustc-env=DM_RUSTC_VERSION={rustc_version}");
    Ok(())
}
