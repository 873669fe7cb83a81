//! The real `parlor` binary as a child process, for the tests that kill it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::PASSWORD;

/// The `parlor` binary, running on a data folder.
pub struct Parlor {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Parlor {
    /// Starts Parlor on `dir`, on `addr` (port 0: any free port), and waits until it
    /// says where it listens.
    pub async fn start(dir: &Path, addr: &str) -> Self {
        Self::start_with(dir, addr, &[]).await
    }

    /// [`Parlor::start`] with more of the environment set.
    pub async fn start_with(dir: &Path, addr: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_parlor"));
        if let Some(url) = parlor_server::store::Store::test_database_url(dir)
            .await
            .expect("a database")
        {
            command.env("PARLOR_DATABASE_URL", url);
        }
        let mut child = command
            .envs(env.iter().copied())
            .env("PARLOR_DATA_DIR", dir)
            .env("PARLOR_ADDR", addr)
            .env("PARLOR_ADMIN_PASSWORD", PASSWORD)
            .env("PARLOR_SHUTDOWN_SECS", "3")
            // Many customers on one address, sending fast: far over a person's pace.
            .env("PARLOR_MESSAGES_PER_VISITOR_PER_SEC", "1000")
            .env("PARLOR_FRAMES_PER_VISITOR_PER_SEC", "1000")
            .env("PARLOR_CONNECTIONS_PER_IP", "0")
            .env("PARLOR_MESSAGES_PER_IP_PER_SEC", "100000")
            .env("PARLOR_CHATS_PER_IP_PER_MINUTE", "100000")
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("parlor starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("parlor says where it listens in time")
                .expect("stdout readable")
                .expect("parlor printed its address");
            if let Some(url) = line.trim().strip_prefix("Agent console: http://") {
                let host = url.trim_end_matches("/console/");
                break host.parse().expect("an address");
            }
        };
        // Keep reading so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr }
    }

    pub async fn kill_9(mut self) -> SocketAddr {
        self.child.kill().await.expect("SIGKILL");
        self.addr
    }

    /// Asks Parlor to shut down, as a service manager does.
    pub async fn sigterm(&self) {
        let pid = self.child.id().expect("a pid");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> String {
        super::sign_in_at(self.addr, email, password).await
    }

    pub async fn add_agent(&self, admin: &str, email: &str) {
        let status = reqwest::Client::new()
            .post(self.url("/api/agents"))
            .header("cookie", admin)
            .json(&serde_json::json!({
                "name": "Bea", "email": email, "password": "bea-password-1",
                "is_admin": false, "active": true, "capacity": 3, "groups": []
            }))
            .send()
            .await
            .expect("answers")
            .status();
        assert!(status.is_success());
    }
}
