//! Test harness: a real partnerloop server on a random loopback port,
//! over a fresh database — an SQLite file in a temporary directory, or a
//! new PostgreSQL database when `PARTNERLOOP_TEST_POSTGRES_URL` is set
//! (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Without it, the
//! PostgreSQL variant of each scenario says so on stderr and does nothing.

#![allow(dead_code)]

pub mod staff_client;

use std::io::Write as _;
use std::sync::Arc;

use partnerloop_app::{Ctx, workspaces};
use partnerloop_store::{SqlStore, StoreOptions};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;

pub const PG_ENV: &str = "PARTNERLOOP_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub store: Arc<SqlStore>,
    pub database_url: String,
    /// Admin token of the `default` workspace.
    pub admin: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

/// Whether the PostgreSQL variant can run; says why not, visibly, when it cannot.
pub fn postgres_available(test: &str) -> bool {
    if std::env::var(PG_ENV).is_ok_and(|v| !v.is_empty()) {
        return true;
    }
    // Written to the real stderr (not the captured test output) so that a
    // skipped PostgreSQL run is seen, never mistaken for a pass.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test} on PostgreSQL: {PG_ENV} is not set");
    false
}

pub async fn fresh_database_url(engine: Engine) -> (String, Option<tempfile::TempDir>, Option<(String, String)>) {
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (url, Some(dir), None)
        }
        Engine::Postgres => {
            let admin_url = std::env::var(PG_ENV).expect(PG_ENV);
            let name = format!("pl_test_{}", ulid::Ulid::new().to_string().to_lowercase());
            let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create test database");
            admin.close().await;
            let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin_url.clone());
            (format!("{base}/{name}"), None, Some((admin_url, name)))
        }
    }
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> TestApp {
        Self::spawn_with(engine, |s| s).await
    }

    /// A server whose state `configure` may change first (inbound mail, …).
    pub async fn spawn_with(engine: Engine, configure: impl FnOnce(partnerloop_web::AppState) -> partnerloop_web::AppState) -> TestApp {
        partnerloop_jobs::http::install_crypto_provider();
        let (database_url, dir, pg_drop) = fresh_database_url(engine).await;
        let store = Arc::new(SqlStore::connect(&database_url, &StoreOptions::default()).await.expect("open store"));
        store.migrate().await.expect("migrate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let secret = partnerloop_app::Store::instance_setting_or_init(store.as_ref(), "secret_key", partnerloop_app::auth::random_secret())
            .await
            .unwrap();
        let router = partnerloop_web::router(configure(partnerloop_web::AppState::new(store.clone(), &secret)));
        tokio::spawn(partnerloop_web::serve(listener, router, std::future::pending()));
        let mut app = TestApp {
            base: format!("http://{addr}"),
            client: Client::new(),
            store,
            database_url,
            admin: String::new(),
            _dir: dir,
            pg_drop,
        };
        app.admin = app.admin_token("default").await;
        app
    }

    /// A new admin token for workspace `slug` (created when missing).
    pub async fn admin_token(&self, slug: &str) -> String {
        let now = jiff::Timestamp::now();
        let ws = workspaces::ensure(self.store.as_ref(), slug, now).await.expect("workspace");
        partnerloop_app::auth::create_admin_key(self.store.as_ref(), &Ctx::system(ws.id, "test", now), Some("test"))
            .await
            .expect("admin key")
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut r = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token)).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(token)).json(body).send().await.expect("POST")
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path, Some(token)).json(body).send().await.expect("PATCH")
    }

    /// Creates a partner as `token`'s admin and returns its JSON.
    pub async fn create_partner(&self, token: &str, name: &str, email: &str) -> Value {
        let r = self
            .post(
                "/api/v1/partners",
                token,
                &serde_json::json!({
                    "name": name, "type": "consultant", "contact": {"name": "Contact of ".to_owned() + name, "email": email}
                }),
            )
            .await;
        assert_eq!(r.status(), 201, "create partner");
        r.json().await.expect("json")
    }

    /// `n` partners (`Partner {i}`, contact `p{i}@partner{i}.example`), each
    /// with its own partner token: `(id, token)`.
    pub async fn partners_with_tokens(&self, n: usize) -> Vec<(String, String)> {
        let mut partners = Vec::new();
        for i in 0..n {
            let p = self.create_partner(&self.admin, &format!("Partner {i}"), &format!("p{i}@partner{i}.example")).await;
            let id = p["id"].as_str().expect("id").to_owned();
            let r = self.post(&format!("/api/v1/partners/{id}/api-keys"), &self.admin, &serde_json::json!({})).await;
            let key: Value = r.json().await.expect("json");
            partners.push((id, key["token"].as_str().expect("token").to_owned()));
        }
        partners
    }

    /// Drops the test's PostgreSQL database.
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = self.pg_drop
            && let Ok(admin) = sqlx::PgPool::connect(&admin_url).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await;
            admin.close().await;
        }
    }
}

/// The JSON body and status of a response.
pub async fn body(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The fields named in a problem's `errors`.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// Runs each scenario `async fn NAME(engine: Engine)` as two tests,
/// `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::common::postgres_available(stringify!($name)) {
                        super::$name($crate::common::Engine::Postgres).await;
                    }
                }
            )+
        }
    };
}
