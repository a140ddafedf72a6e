//! The binary itself: first start, backup/restore, key commands, SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

fn canopy(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_canopy"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("CANOPY_DATABASE_URL")
        .output()
        .expect("run canopy")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    async fn start(data: &Path) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_canopy"))
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .env_remove("CANOPY_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn canopy serve");
        let base = format!("http://127.0.0.1:{port}");
        // From here on `Drop` kills and reaps the child.
        let server = Server { child, base };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if reqwest::get(format!("{}/v1/health", server.base))
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become healthy");
    }

    /// SIGTERM, then wait for a clean exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn create_client(base: &str, key: &str, name: &str) -> String {
    canopy_runtime::init_tls();
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/admin/clients"))
        .bearer_auth(key)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status_of(base: &str, key: &str, path: &str) -> StatusCode {
    canopy_runtime::init_tls();
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_backup_restore_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    let key = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "admin.key is private");
    }
    let kept = create_client(&server.base, &key, "Before backup").await;
    let backup = dir.path().join("snap.db");
    let out = canopy(&data, &["backup", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lost = create_client(&server.base, &key, "After backup").await;
    assert!(server.terminate().success(), "clean exit on SIGTERM");

    let out = canopy(&data, &["restore", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(&data).await;
    assert_eq!(
        status_of(&server.base, &key, &format!("/v1/clients/{kept}")).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&server.base, &key, &format!("/v1/clients/{lost}")).await,
        StatusCode::NOT_FOUND
    );
    // A second start does not bootstrap again.
    assert_eq!(
        std::fs::read_to_string(data.join("admin.key"))
            .unwrap()
            .trim(),
        key
    );
    drop(server);

    // A file that is not a database is refused and changes nothing.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    let out = canopy(&data, &["restore", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    let server = Server::start(&data).await;
    assert_eq!(
        status_of(&server.base, &key, &format!("/v1/clients/{kept}")).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_commands_work_on_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = canopy(&data, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = canopy(&data, &["projects", "create", "Acme", "--slug", "acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = canopy(
        &data,
        &[
            "keys",
            "create",
            "--name",
            "ci",
            "--scopes",
            "read,write",
            "--project",
            "acme",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], json!(["read", "write"]));
    let list = String::from_utf8(canopy(&data, &["keys", "list"]).stdout).unwrap();
    assert!(list.contains(&id) && !list.contains(&secret));
    let out = canopy(&data, &["keys", "create", "--scopes", "raed"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Accepted values"));

    let server = Server::start(&data).await;
    assert_eq!(
        status_of(&server.base, &secret, "/api/auth/me").await,
        StatusCode::OK
    );
    // Revoking from the CLI while the server runs takes effect within the key cache's second.
    let out = canopy(&data, &["keys", "revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        status_of(&server.base, &secret, "/api/auth/me").await,
        StatusCode::UNAUTHORIZED
    );
}
