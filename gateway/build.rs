//! Records the commit the binary is built from (`gateway_build_info`, `gateway --version`):
//! `GATEWAY_COMMIT` when set (a build without `.git`, e.g. an image), else `git rev-parse`.

fn main() {
    println!("cargo:rerun-if-env-changed=GATEWAY_COMMIT");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    let commit = std::env::var("GATEWAY_COMMIT").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=GATEWAY_COMMIT={}",
        commit
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
}
