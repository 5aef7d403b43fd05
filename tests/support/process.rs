//! The real binary as a child process: `hotline580 serve` on a port of its
//! own, configured by environment variables, stopped with SIGKILL (no
//! graceful shutdown) to play a crash.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Option<Child>,
    pub port: u16,
    pub base_url: String,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Service {
    /// Starts `hotline580 serve` with `env` (plus `server.listen` on `port`)
    /// and waits until `/healthz` answers.
    pub async fn start(env: &[(String, String)], port: u16) -> Service {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline580"));
        cmd.arg("serve")
            .env("HOTLINE580__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOTLINE580__LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the binary starts");
        let service = Service {
            child: Some(child),
            port,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        service.wait_ready(Duration::from_secs(60)).await;
        service
    }

    async fn wait_ready(&self, timeout: Duration) {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client
                .get(format!("{}/readyz", self.base_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "the service on port {} did not become ready",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process ends at once, whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM, then waits for the graceful shutdown to finish.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}
