//! Workspaces, roles and members through the console.

use crate::audit::{connect_on, read_log, with_action, ACCOUNT_LOG};
use crate::helpers::oauth::*;
use crate::helpers::{hidden_value, location, stdout_json, Browser, Engine, TestApp};
use crate::on_both_engines;
use crate::revocation::assert_dead;

on_both_engines!(
    a_user_creates_renames_and_lists_workspaces,
    owners_and_admins_manage_members_and_members_cannot,
    outsiders_see_nothing_of_a_workspace,
    the_last_owner_can_neither_leave_nor_be_removed,
    xss_in_a_workspace_name_is_shown_as_text,
    an_owner_deletes_a_workspace_and_every_token_on_it_dies,
    only_owners_delete_a_workspace_and_never_a_personal_one,
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

/// The first workspace on the home page: the personal one.
async fn personal_workspace(browser: &Browser) -> String {
    let home = browser.get_html("/").await;
    let start = home.find("href=\"/workspaces/").expect("a workspace") + "href=\"/workspaces/".len();
    home[start..start + home[start..].find('"').expect("end")].to_owned()
}

async fn an_owner_deletes_a_workspace_and_every_token_on_it_dies(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    app.signed_in_user("member@example.com").await;
    let ws = create_workspace(&owner, "Doomed").await;
    for (email, role) in [("admin@example.com", "admin"), ("member@example.com", "member")] {
        stdout_json(&app.cli(&["admin", "add-member", "--workspace", &ws, "--email", email, "--role", role]));
    }
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let on_doomed = connect_on(&app, &admin, &client, &ws).await;
    let personal = personal_workspace(&owner).await;
    let elsewhere = connect_on(&app, &owner, &client, &personal).await;
    // An app the workspace owns, authorized on another workspace: it goes with the workspace.
    let created =
        crate::apps::create_app(&owner, &format!("/workspaces/{ws}/integrations"), &crate::apps::valid_fields())
            .await
            .text()
            .await
            .expect("body");
    let id_at = created.find("id=\"client-id\">").expect("id") + "id=\"client-id\">".len();
    let secret_at = created.find("id=\"client-secret\">").expect("secret") + "id=\"client-secret\">".len();
    let ws_client = Client {
        id: created[id_at..id_at + created[id_at..].find('<').expect("end")].trim().to_owned(),
        secret: Some(created[secret_at..secret_at + created[secret_at..].find('<').expect("end")].trim().to_owned()),
    };
    let to_ws_app = connect_on(&app, &owner, &ws_client, &personal).await;

    let settings = format!("/workspaces/{ws}");
    let confirm = format!("/workspaces/{ws}/delete");
    assert!(owner.get_html(&settings).await.contains(&format!("href=\"{confirm}\"")));
    let page = owner.get_html(&confirm).await;
    assert!(page.contains("Delete Doomed?"));
    assert!(page.contains("3 members lose access"), "{page}");
    assert!(page.contains("its 1 OAuth app is deleted"), "{page}");
    assert!(page.contains("2 authorizations end,"), "{page}");

    // Without the form's CSRF token nothing happens.
    assert_eq!(owner.post_raw(&confirm, &[]).await.status(), 403);
    assert_eq!(owner.get(&settings).await.status(), 200);

    let r = owner.submit(&confirm, &confirm, &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    assert_eq!(owner.get(&settings).await.status(), 404);
    assert_eq!(admin.get(&settings).await.status(), 404);
    assert!(!owner.get_html("/").await.contains("Doomed"));

    // Every token issued on it, or to its app, is dead at once; others live on.
    assert_dead(&app, &client, &on_doomed).await;
    assert_eq!(api_status(&app, to_ws_app["access_token"].as_str().expect("at")).await, 401);
    let r = refresh(&app, &ws_client, to_ws_app["refresh_token"].as_str().expect("rt"), None).await;
    assert_eq!(r.status(), 401, "the app itself is gone: invalid_client");
    assert_eq!(api_status(&app, elsewhere["access_token"].as_str().expect("at")).await, 200);

    // The deletion is in the log of the owner who did it, and of the members who lost it.
    for browser in [&owner, &admin] {
        let log = read_log(browser, ACCOUNT_LOG).await;
        let deleted = with_action(&log, "workspace.deleted");
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].actor, "owner@example.com");
        assert!(
            deleted[0].details.contains(&format!(
                "Deleted the workspace “Doomed” ({ws}); 3 members lost access and 2 authorizations ended"
            )),
            "{deleted:?}"
        );
    }
}

async fn only_owners_delete_a_workspace_and_never_a_personal_one(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    let member = app.signed_in_user("member@example.com").await;
    let outsider = app.signed_in_user("outsider@example.com").await;
    let ws = create_workspace(&owner, "Kept").await;
    for (email, role) in [("admin@example.com", "admin"), ("member@example.com", "member")] {
        stdout_json(&app.cli(&["admin", "add-member", "--workspace", &ws, "--email", email, "--role", role]));
    }
    let settings = format!("/workspaces/{ws}");
    let confirm = format!("/workspaces/{ws}/delete");
    for (browser, status) in [(&admin, 403), (&member, 403), (&outsider, 404)] {
        assert!(!browser.get(&settings).await.text().await.expect("body").contains(&confirm));
        assert_eq!(browser.get(&confirm).await.status(), status);
        let csrf = hidden_value(&browser.get_html("/").await, "csrf_token").expect("csrf");
        assert_eq!(browser.post_raw(&confirm, &[("csrf_token", &csrf)]).await.status(), status);
    }
    assert_eq!(owner.get(&settings).await.status(), 200, "still there");
    assert_eq!(admin.get(&settings).await.status(), 200);

    // Nobody deletes their personal workspace, not even its owner.
    let personal = personal_workspace(&owner).await;
    let personal_confirm = format!("/workspaces/{personal}/delete");
    assert!(!owner.get_html(&format!("/workspaces/{personal}")).await.contains(&personal_confirm));
    let r = owner.get(&personal_confirm).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("body").contains("a personal workspace cannot be deleted"));
    let csrf = hidden_value(&owner.get_html("/").await, "csrf_token").expect("csrf");
    assert_eq!(owner.post_raw(&personal_confirm, &[("csrf_token", &csrf)]).await.status(), 403);
    assert_eq!(owner.get(&format!("/workspaces/{personal}")).await.status(), 200);
    assert_eq!(owner.get("/workspaces/ws_missing/delete").await.status(), 404);
}
