//! What the tests of several nodes share: the NATS server, or one of a test's own.

/// The NATS server the tests share; `None` (the test is skipped) unless the tests run
/// on PostgreSQL with NATS.
pub fn shared_nats() -> Option<String> {
    let (Ok(_), Ok(nats)) = (
        std::env::var("PARLOR_TEST_POSTGRES"),
        std::env::var("PARLOR_TEST_NATS"),
    ) else {
        eprintln!("skipped: several nodes need PARLOR_TEST_POSTGRES and PARLOR_TEST_NATS");
        return None;
    };
    Some(nats)
}

/// A NATS server of a test's own (`scripts/nats.sh`), stopped when dropped.
pub struct OwnNats {
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl OwnNats {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = nats_script("start", dir.path()).await;
        Self { dir, url }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats.sh")
}

/// Runs `scripts/nats.sh command dir`; gives what it printed.
pub async fn nats_script(command: &str, dir: &std::path::Path) -> String {
    let out = tokio::process::Command::new(script())
        .arg(command)
        .arg(dir)
        .output()
        .await
        .expect("scripts/nats.sh runs");
    assert!(out.status.success(), "nats.sh {command}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
