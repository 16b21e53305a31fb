//! Staff user management in the console, on SQLite and PostgreSQL: an
//! admin invites a user (the link is mailed through the outbox and shown
//! once, and signs in), changes its role (the user's next page already
//! has it), disables it (its session ends at once and neither a password
//! nor a fresh link signs it in) and enables it again; nobody disables
//! themselves, the last admin stays one, other roles get 403, and every
//! form needs its CSRF token.

mod common;

use common::staff_client::{Browser, staff_user};
use common::{Engine, TestApp};
use partnerloop_app::Store;
use partnerloop_app::outbox::{OutboxFilter, OutboxStore};
use partnerloop_app::staff::{StaffRole, StaffStore};
use reqwest::StatusCode;

on_both_engines!(an_admin_invites_promotes_and_disables_staff, the_last_admin_and_other_roles_are_protected,);

async fn signed_in(app: &TestApp, email: &str, role: StaffRole) -> Browser {
    let url = staff_user(app, email, role).await;
    signed_in_by(app, &url).await
}

async fn signed_in_by(app: &TestApp, url: &str) -> Browser {
    let mut b = Browser::new(app);
    let (s, location) = b.use_link(url).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    b.get("/admin").await;
    b
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    app.store.list_staff_users(&ws.id).await.unwrap().into_iter().find(|u| u.email == email).unwrap().id
}

/// Mails queued to `to`.
async fn mails_to(app: &TestApp, to: &str) -> Vec<serde_json::Value> {
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let filter = OutboxFilter { channel: None, status: None, target: Some(to.to_owned()) };
    let page = partnerloop_app::store::Page { limit: 50, after: None };
    app.store.list_outbox(&ws.id, &filter, &page).await.unwrap().items.into_iter().map(|i| i.payload).collect()
}

async fn an_admin_invites_promotes_and_disables_staff(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut admin = signed_in(&app, "boss@console.example", StaffRole::Admin).await;
    let (s, page, _) = admin.get("/admin/users").await;
    assert_eq!(s, 200);
    assert!(page.contains("boss@console.example") && page.contains("<a href=\"/admin/users\">Users</a>"), "{page}");
    let csrf = admin.csrf();

    // Without the token, nothing.
    let (s, _, _) = admin.post("/admin/users", &[("email", "new@console.example"), ("role", "manager")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, page, _) = admin.post("/admin/users", &[("csrf", &csrf), ("email", "not-an-email"), ("role", "root")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("id=\"invite-email-error\"") && page.contains("id=\"invite-role-error\"") && page.contains("value=\"not-an-email\"")
    );

    let (s, page, _) = admin.post("/admin/users", &[("csrf", &csrf), ("email", "New@Console.example"), ("role", "manager")]).await;
    assert_eq!(s, 200);
    let start =
        page.find("id=\"invite-link\" readonly value=\"").expect("the link, shown once") + "id=\"invite-link\" readonly value=\"".len();
    let link = page[start..].split('"').next().unwrap().to_owned();
    assert!(link.contains("/login/"), "{link}");
    let mails = mails_to(&app, "new@console.example").await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].to_string().contains(&link), "the mail carries the same link: {}", mails[0]);
    let (_, again, _) = admin.get("/admin/users").await;
    assert!(!again.contains(&link), "the link is shown only once");
    let (s, page, _) = admin.post("/admin/users", &[("csrf", &csrf), ("email", "new@console.example"), ("role", "sales")]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(page.contains("already exists"), "{page}");

    let mut newbie = signed_in_by(&app, &link).await;
    let (_, page, _) = newbie.get("/admin/rules").await;
    assert!(!page.contains("may read the rules but not change them"), "a manager changes the rules");
    let (_, users, _) = admin.get("/admin/users").await;
    assert!(!users.contains("never"), "both have signed in: {users}");

    // A role change applies to the user's next page.
    let id = user_id(&app, "new@console.example").await;
    let (s, _, location) = admin.post(&format!("/admin/users/{id}/role"), &[("csrf", &csrf), ("role", "sales")]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/users")));
    let (_, page, _) = newbie.get("/admin/rules").await;
    assert!(page.contains("may read the rules but not change them"), "{page}");

    // The user sets a password; disabled, its session ends and nothing signs it in.
    let nc = newbie.csrf();
    let (s, _, _) = newbie.post("/admin/account", &[("csrf", &nc), ("password", "correct horse battery staple")]).await;
    assert_eq!(s, 200);
    let (s, _, _) = admin.post(&format!("/admin/users/{id}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, location) = newbie.get("/admin").await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "signed out at once");
    let mut fresh = Browser::new(&app);
    fresh.get("/login").await;
    let fc = fresh.csrf();
    let (s, _, _) =
        fresh.post("/login", &[("csrf", &fc), ("email", "new@console.example"), ("password", "correct horse battery staple")]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = fresh.post("/login", &[("csrf", &fc), ("email", "new@console.example"), ("action", "link")]).await;
    assert_eq!(s, 200);
    assert_eq!(mails_to(&app, "new@console.example").await.len(), 1, "no link is mailed to a disabled user");
    let (_, users, _) = admin.get("/admin/users").await;
    assert!(users.contains("<span class=\"badge\">disabled</span>"), "{users}");

    // Enabled again, the password works.
    let (s, _, _) = admin.post(&format!("/admin/users/{id}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, location) =
        fresh.post("/login", &[("csrf", &fc), ("email", "new@console.example"), ("password", "correct horse battery staple")]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));

    let (_, audit, _) = admin.get("/admin/audit").await;
    for action in ["staff.created", "staff.role_changed", "staff.disabled", "staff.enabled"] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    app.cleanup().await;
}

async fn the_last_admin_and_other_roles_are_protected(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut admin = signed_in(&app, "only@console.example", StaffRole::Admin).await;
    let csrf = admin.csrf();
    let me = user_id(&app, "only@console.example").await;

    let (s, page, _) = admin.post(&format!("/admin/users/{me}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(page.contains("you cannot disable yourself"), "{page}");
    let (s, page, _) = admin.post(&format!("/admin/users/{me}/role"), &[("csrf", &csrf), ("role", "manager")]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(page.contains("at least one enabled admin"), "{page}");
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    assert_eq!(app.store.staff_user(&ws.id, &me).await.unwrap().role, StaffRole::Admin, "nothing changed");

    // A manager may not manage staff: 403, and no link in the navigation.
    let mut manager = signed_in(&app, "lead@console.example", StaffRole::Manager).await;
    let (s, page, _) = manager.get("/admin/users").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(!page.contains("<a href=\"/admin/users\">"), "{page}");
    let mc = manager.csrf();
    let (s, _, _) = manager.post("/admin/users", &[("csrf", &mc), ("email", "sneaky@console.example"), ("role", "admin")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = manager.post(&format!("/admin/users/{me}/disable"), &[("csrf", &mc)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.store.list_staff_users(&ws.id).await.unwrap().len(), 2);

    // With a second admin, the first may step down; the second may not then be demoted.
    let lead = user_id(&app, "lead@console.example").await;
    let (s, _, _) = admin.post(&format!("/admin/users/{lead}/role"), &[("csrf", &csrf), ("role", "admin")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = admin.post(&format!("/admin/users/{me}/role"), &[("csrf", &csrf), ("role", "finance")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = manager.post(&format!("/admin/users/{lead}/role"), &[("csrf", &mc), ("role", "sales")]).await;
    assert_eq!(s, StatusCode::CONFLICT, "the last admin stays one");
    let (s, _, _) = manager.post(&format!("/admin/users/{me}/disable"), &[("csrf", &mc)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "a non-admin may be disabled by the remaining admin");
    app.cleanup().await;
}
