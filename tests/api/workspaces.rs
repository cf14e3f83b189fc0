//! Workspaces, roles and members through the console.

use crate::helpers::{hidden_value, location, stdout_json, Browser, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(
    a_user_creates_renames_and_lists_workspaces,
    owners_and_admins_manage_members_and_members_cannot,
    outsiders_see_nothing_of_a_workspace,
    the_last_owner_can_neither_leave_nor_be_removed,
    xss_in_a_workspace_name_is_shown_as_text,
);

async fn workspace_id_from(response: &reqwest::Response) -> String {
    let to = location(response);
    to.strip_prefix("/workspaces/").expect("redirected to the new workspace").to_owned()
}

async fn create_workspace(browser: &Browser, name: &str) -> String {
    let r = browser.submit("/", "/workspaces", &[("name", name)]).await;
    assert_eq!(r.status(), 303);
    workspace_id_from(&r).await
}

async fn a_user_creates_renames_and_lists_workspaces(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("owner@example.com").await;
    let id = create_workspace(&browser, "Analytics").await;
    let page = browser.get_html(&format!("/workspaces/{id}")).await;
    assert!(page.contains("<h1>Analytics</h1>"));
    assert!(page.contains("owner@example.com"));

    let r = browser
        .submit(&format!("/workspaces/{id}"), &format!("/workspaces/{id}/rename"), &[("name", "Analytics EU")])
        .await;
    assert_eq!(r.status(), 303);
    let home = browser.get_html("/").await;
    assert!(home.contains("Analytics EU"));
    assert!(home.contains("Test User&#x27;s workspace"), "the personal workspace is still listed");

    let r = browser
        .submit(&format!("/workspaces/{id}"), &format!("/workspaces/{id}/rename"), &[("name", &"x".repeat(81))])
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("at most 80 characters"));
}

async fn owners_and_admins_manage_members_and_members_cannot(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    let member = app.signed_in_user("member@example.com").await;
    app.signed_in_user("newcomer@example.com").await;
    let id = create_workspace(&owner, "Team").await;
    let page = format!("/workspaces/{id}");
    let add = format!("/workspaces/{id}/members");

    assert_eq!(owner.submit(&page, &add, &[("email", "admin@example.com"), ("role", "admin")]).await.status(), 303);
    assert_eq!(owner.submit(&page, &add, &[("email", "member@example.com"), ("role", "member")]).await.status(), 303);

    // A member sees the page but has no forms to manage it, and a forged request is refused.
    let member_page = member.get_html(&page).await;
    assert!(!member_page.contains("Add a member"));
    let csrf = hidden_value(&member_page, "csrf_token").expect("csrf");
    let r =
        member.post_raw(&add, &[("csrf_token", &csrf), ("email", "newcomer@example.com"), ("role", "member")]).await;
    assert_eq!(r.status(), 403);
    let r = member.post_raw(&format!("/workspaces/{id}/rename"), &[("csrf_token", &csrf), ("name", "Mine now")]).await;
    assert_eq!(r.status(), 403);

    // An admin adds members but cannot add owners or remove the owner.
    assert_eq!(admin.submit(&page, &add, &[("email", "newcomer@example.com"), ("role", "member")]).await.status(), 303);
    let r = admin.submit(&page, &add, &[("email", "member@example.com"), ("role", "admin")]).await;
    assert_eq!(r.status(), 409, "already a member");
    let r = admin.submit(&page, &add, &[("email", "nobody@example.com"), ("role", "member")]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("no Tessera account has this email"));
    let r = admin.submit(&page, &add, &[("email", "x@example.com"), ("role", "owner")]).await;
    assert_eq!(r.status(), 403);

    let listing = owner.get_html(&page).await;
    for email in ["owner@example.com", "admin@example.com", "member@example.com", "newcomer@example.com"] {
        assert!(listing.contains(email), "{email} listed");
    }
    // The owner removes the member; the member loses access at once.
    let member_id = app.cli(&["admin", "create-user", "--email", "member@example.com", "--password", "irrelevant123"]);
    assert!(!member_id.status.success(), "email already taken");
    let member_user_id = user_id_in(&listing, "member@example.com");
    let r = owner.submit(&page, &format!("/workspaces/{id}/members/{member_user_id}/remove"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(member.get(&page).await.status(), 404);
    assert!(!owner.get_html(&page).await.contains("member@example.com"));
}

/// The user id in the remove form next to `email` on a workspace page.
fn user_id_in(html: &str, email: &str) -> String {
    let at = html.find(email).expect("email on page");
    let rest = &html[at..];
    let start = rest.find("/members/").expect("a member form") + "/members/".len();
    let end = rest[start..].find("/remove").expect("remove action") + start;
    rest[start..end].to_owned()
}

async fn outsiders_see_nothing_of_a_workspace(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let outsider = app.signed_in_user("outsider@example.com").await;
    let id = create_workspace(&owner, "Private").await;
    let page = format!("/workspaces/{id}");
    assert_eq!(outsider.get(&page).await.status(), 404);
    let csrf = hidden_value(&outsider.get_html("/").await, "csrf_token").expect("csrf");
    for action in ["rename", "members"] {
        let r = outsider
            .post_raw(
                &format!("/workspaces/{id}/{action}"),
                &[("csrf_token", &csrf), ("name", "x"), ("email", "outsider@example.com"), ("role", "admin")],
            )
            .await;
        assert_eq!(r.status(), 404, "{action}");
    }
    assert!(!owner.get_html(&page).await.contains("outsider@example.com"));
}

async fn the_last_owner_can_neither_leave_nor_be_removed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("solo@example.com").await;
    let second = app.signed_in_user("second@example.com").await;
    let id = create_workspace(&owner, "Solo").await;
    let page = format!("/workspaces/{id}");
    let listing = owner.get_html(&page).await;
    let owner_id = user_id_in(&listing, "solo@example.com");

    let r = owner.submit(&page, &format!("/workspaces/{id}/members/{owner_id}/remove"), &[]).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.expect("body").contains("at least one owner"));

    // Through the operator CLI a second owner can only be added as admin; promote by adding via owner.
    let add = format!("/workspaces/{id}/members");
    assert_eq!(owner.submit(&page, &add, &[("email", "second@example.com"), ("role", "owner")]).await.status(), 303);
    let r = owner.submit(&page, &format!("/workspaces/{id}/members/{owner_id}/remove"), &[]).await;
    assert_eq!(r.status(), 303, "with another owner, leaving works");
    assert_eq!(location(&r), "/");
    assert_eq!(owner.get(&page).await.status(), 404);

    let second_id = user_id_in(&second.get_html(&page).await, "second@example.com");
    let r = second.submit(&page, &format!("/workspaces/{id}/members/{second_id}/remove"), &[]).await;
    assert_eq!(r.status(), 409, "now the last owner");
    let out = app.cli(&["admin", "add-member", "--workspace", &id, "--email", "solo@example.com", "--role", "member"]);
    assert_eq!(stdout_json(&out)["role"], "member");
}

async fn xss_in_a_workspace_name_is_shown_as_text(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("xss@example.com").await;
    let payload = "<script>alert(1)</script>";
    let id = create_workspace(&browser, payload).await;
    for page in ["/".to_owned(), format!("/workspaces/{id}")] {
        let html = browser.get_html(&page).await;
        assert!(!html.contains(payload), "{page} must escape the name");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{page}");
    }
}
