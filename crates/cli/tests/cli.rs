//! The `partnerloop` binary as an operator uses it: configuration errors,
//! `migrate`, `keys create`, `demo`, and `serve` with graceful shutdown.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Engine, fresh_database_url, postgres_available};

fn partnerloop(db: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_partnerloop"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PARTNERLOOP_") {
            c.env_remove(k);
        }
    }
    c.env("PARTNERLOOP_DATABASE_URL", db).env("PARTNERLOOP_LOG", "warn").args(args);
    c
}

fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null()).output().expect("run partnerloop")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    let (db, _dir, _) = fresh_database_url(Engine::Sqlite).await;
    for (var, value) in [
        ("PARTNERLOOP_BIND", "not-an-address"),
        ("PARTNERLOOP_DATABASE_URL", "mysql://localhost/x"),
        ("PARTNERLOOP_BASE_URL", "example.com"),
        ("PARTNERLOOP_SMTP_URL", "smtp://user:s3cret@mail"),
        ("PARTNERLOOP_SECRET_KEY", "short"),
    ] {
        let mut c = partnerloop(&db, &["serve"]);
        c.env(var, value);
        let out = run(c);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{var}: {err}");
        assert!(err.starts_with(&format!("partnerloop: {var}: ")), "{err}");
        assert!(!err.contains("s3cret"), "a secret leaked: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let (db, dir, _) = fresh_database_url(Engine::Sqlite).await;
    let file = dir.as_ref().unwrap().path().join("partnerloop.toml");
    std::fs::write(&file, "database_url = \"mysql://from-file\"\n").unwrap();
    // The environment (a valid SQLite URL) beats the file's bad value.
    let mut c = partnerloop(&db, &["migrate", "--config", file.to_str().unwrap()]);
    c.env("PARTNERLOOP_BIND", "bad");
    let out = run(c);
    assert_eq!(out.status.code(), Some(2), "the bad environment value is seen");
    let mut c = partnerloop(&db, &["migrate", "--config", file.to_str().unwrap(), "--bind", "127.0.0.1:1"]);
    c.env("PARTNERLOOP_BIND", "bad");
    let out = run(c);
    assert!(out.status.success(), "the flag beats the environment: {}", text(&out.stderr));
    // With no environment value, the file's bad URL is used and refused.
    let mut c = partnerloop(&db, &["migrate", "--config", file.to_str().unwrap()]);
    c.env_remove("PARTNERLOOP_DATABASE_URL");
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("PARTNERLOOP_DATABASE_URL"));
}

#[tokio::test]
async fn keys_create_prints_the_token_alone_and_it_works() {
    let (db, _dir, _) = fresh_database_url(Engine::Sqlite).await;
    let out = run(partnerloop(&db, &["keys", "create", "--role", "admin", "--workspace", "acme", "--name", "ci"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.trim_end_matches('\n');
    assert!(!token.contains('\n') && token.starts_with("pla_"), "{stdout:?}");
    assert_eq!(stdout, format!("{token}\n"));
    let out = run(partnerloop(&db, &["keys", "create", "--role", "superuser"]));
    assert!(!out.status.success());

    let store = partnerloop_store::SqlStore::connect(&db, &Default::default()).await.unwrap();
    let (ws, _) = partnerloop_app::auth::authenticate(&store, token).await.unwrap();
    let acme = partnerloop_app::Store::workspace_by_slug(&store, "acme").await.unwrap();
    assert_eq!(ws, acme.id, "the token belongs to the named workspace, created on demand");
}

#[tokio::test]
async fn every_command_explains_itself() {
    for args in [&["--help"][..], &["serve", "--help"], &["migrate", "--help"], &["keys", "create", "--help"], &["demo", "--help"]] {
        let out = run(partnerloop("sqlite://unused.db", args));
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

/// Starts `serve`, waits until it answers, and returns it with its base URL.
async fn start_server(db: &str, extra: &[&str]) -> (std::process::Child, String) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--bind", &bind];
    args.extend_from_slice(extra);
    let mut c = partnerloop(db, &args);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn serve");
    let base = format!("http://{bind}");
    let started = Instant::now();
    // `--demo` replays a year of history before it listens.
    while started.elapsed() < Duration::from_secs(180) {
        if {
            partnerloop_jobs::http::install_crypto_provider();
            reqwest::get(format!("{base}/readyz"))
        }
        .await
        .is_ok_and(|r| r.status() == 200)
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready");
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn serve_demo_answers_with_real_data_and_stops_cleanly_on_sigterm() {
    let (db, _dir, _) = fresh_database_url(Engine::Sqlite).await;
    let (mut child, base) = start_server(&db, &["--demo"]).await;
    let token = {
        use std::io::Read as _;
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 512];
        let n = out.read(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let link = line.split_whitespace().find(|w| w.starts_with(&format!("{base}/login/"))).expect("the demo prints a console link");
        let page = reqwest::get(link).await.unwrap();
        assert_eq!(page.status(), 200, "the console link shows its sign-in button");
        line.split_whitespace().find(|w| w.starts_with("pla_")).expect("the demo prints its admin token").to_owned()
    };
    let client = {
        partnerloop_jobs::http::install_crypto_provider();
        reqwest::Client::new()
    };
    for (path, at_least) in [
        ("/api/v1/partners?limit=500", 40),
        ("/api/v1/accounts", 4),
        ("/api/v1/deals?limit=500", 100),
        ("/api/v1/commission-plans", 3),
        ("/api/v1/referrals?limit=500", 300),
        ("/api/v1/commissions?limit=500", 50),
        ("/api/v1/payouts", 6),
    ] {
        let page: serde_json::Value = client.get(format!("{base}{path}")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert!(page["data"].as_array().unwrap().len() >= at_least, "{path}: {page}");
    }
    // A year of history: every KPI has something to show.
    let metrics: serde_json::Value =
        client.get(format!("{base}/api/v1/metrics")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let kpis = &metrics;
    for kpi in ["partner_activation_rate", "referral_to_closed_won_rate", "median_days_to_first_referral"] {
        assert!(kpis[kpi].as_f64().is_some_and(|v| v > 0.0), "{kpi}: {metrics}");
    }
    let revenue: f64 = kpis["partner_sourced_revenue"]["amount"].as_str().unwrap().parse().unwrap();
    assert!(revenue > 100_000.0, "{metrics}");
    let partners = {
        let page: serde_json::Value =
            client.get(format!("{base}/api/v1/partners?limit=500")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        page["data"].as_array().unwrap().len()
    };
    let status = terminate(&mut child);
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");

    // A second `serve --demo` on the same database seeds nothing more.
    let (mut child, base) = start_server(&db, &["--demo"]).await;
    let page: serde_json::Value =
        client.get(format!("{base}/api/v1/partners?limit=500")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), partners, "a second start seeds nothing more");
    assert!(terminate(&mut child).success());
}

#[tokio::test]
async fn two_servers_share_one_postgres_database() {
    if !postgres_available("two_servers_share_one_postgres_database") {
        return;
    }
    let (db, _, pg) = fresh_database_url(Engine::Postgres).await;
    let ((mut a, base_a), (mut b, base_b)) = tokio::join!(start_server(&db, &[]), start_server(&db, &[]));
    let out = run(partnerloop(&db, &["keys", "create", "--role", "admin"]));
    let token = text(&out.stdout).trim().to_owned();
    let client = {
        partnerloop_jobs::http::install_crypto_provider();
        reqwest::Client::new()
    };
    let created: serde_json::Value = client
        .post(format!("{base_a}/api/v1/partners"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Shared", "type": "agency", "contact": {"name": "S", "email": "s@shared.example"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let read: serde_json::Value = client
        .get(format!("{base_b}/api/v1/partners/{}", created["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, created, "one server reads what the other wrote");
    assert!(terminate(&mut a).success());
    assert!(terminate(&mut b).success());
    if let Some((admin_url, name)) = pg {
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await.unwrap();
    }
}
