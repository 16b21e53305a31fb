//! A form-posting client for the staff console tests: keeps cookies,
//! follows no redirects, carries the CSRF token; and a staff user with its
//! sign-in URL.

use std::collections::BTreeMap;

use partnerloop_app::staff::{self, StaffRole};
use partnerloop_app::{Ctx, workspaces};
use reqwest::StatusCode;

use super::TestApp;

/// A browser: keeps cookies, follows no redirects (the tests look at them).
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { base: app.base.clone(), client, cookies: BTreeMap::new() }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) }
    }

    pub fn keep(&mut self, r: &reqwest::Response) {
        for c in r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, String, Option<String>) {
        let r = self.client.get(self.url(path)).header("cookie", self.cookie_header()).send().await.unwrap();
        self.read(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, Option<String>) {
        let body = form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&");
        let r = self
            .client
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    pub async fn read(&mut self, r: reqwest::Response) -> (StatusCode, String, Option<String>) {
        self.keep(&r);
        let status = r.status();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        (status, r.text().await.unwrap(), location)
    }

    pub fn csrf(&self) -> String {
        self.cookies.get("pl_staff_csrf").cloned().expect("a CSRF cookie")
    }

    /// Opens a sign-in link: the page's button, then the POST.
    pub async fn use_link(&mut self, url: &str) -> (StatusCode, Option<String>) {
        let (s, page, _) = self.get(url).await;
        assert_eq!(s, 200);
        assert!(page.contains("<form method=\"post\"") && page.contains(&self.csrf()), "the button's form carries the token");
        let csrf = self.csrf();
        let (s, _, location) = self.post(url, &[("csrf", &csrf)]).await;
        (s, location)
    }
}

pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A staff user of the `default` workspace and its sign-in URL.
pub async fn staff_user(app: &TestApp, email: &str, role: StaffRole) -> String {
    let now = jiff::Timestamp::now();
    let ws = workspaces::ensure(app.store.as_ref(), "default", now).await.unwrap();
    let (_, url) = staff::create_user(app.store.as_ref(), &app.base, &Ctx::system(ws.id, "test", now), email, role).await.unwrap();
    url
}
