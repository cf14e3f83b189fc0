//! Sign-up, login, logout, sessions, CSRF and throttling.

use crate::helpers::{hidden_value, location, Engine, TestApp, PASSWORD};
use crate::on_both_engines;

on_both_engines!(
    signup_creates_an_account_with_a_personal_workspace_and_signs_in,
    signup_refuses_bad_input_with_an_inline_error_and_creates_nothing,
    signup_refuses_a_taken_email,
    login_redirects_to_next_with_a_new_session,
    login_says_the_same_for_an_unknown_email_and_a_wrong_password,
    login_next_must_stay_on_tesseras_origin,
    repeated_failed_logins_for_one_account_are_throttled,
    repeated_failed_logins_from_one_address_are_throttled,
    logout_ends_the_session,
    a_form_without_a_valid_csrf_token_is_refused_and_changes_nothing,
    malformed_requests_get_a_readable_4xx,
    pages_that_need_a_login_send_you_there_and_back,
);

async fn signup_creates_an_account_with_a_personal_workspace_and_signs_in(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.browser();
    let response = browser
        .submit("/signup", "/signup", &[("name", "Ada Lovelace"), ("email", "Ada@Example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    let cookie = response.headers().get("set-cookie").expect("session cookie").to_str().expect("ascii").to_owned();
    assert!(cookie.starts_with("tessera_session=tes_se_"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "no Secure flag on an http issuer: {cookie}");

    let home = browser.get_html("/").await;
    assert!(home.contains("Hello, Ada Lovelace"));
    assert!(home.contains("Ada Lovelace&#x27;s workspace"), "personal workspace listed: {home}");
    assert!(home.contains(">owner<"));

    // The email was normalised: logging in with another case works.
    let other = app.browser();
    other.log_in("ada@example.COM", PASSWORD).await;
}

async fn signup_refuses_bad_input_with_an_inline_error_and_creates_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("name", "Ada"), ("email", ""), ("password", PASSWORD)], "Email: enter an email address"),
        (&[("name", "Ada"), ("email", "not-an-email"), ("password", PASSWORD)], "Email: enter an email address"),
        (&[("name", "Ada"), ("email", "ada@example.com"), ("password", "short")], "Password: must be at least 10"),
        (&[("name", ""), ("email", "ada@example.com"), ("password", PASSWORD)], "Name: enter your name"),
        (&[("email", "ada@example.com"), ("password", PASSWORD)], "Name: enter your name"),
        (&[("name", "Ada"), ("email", "ada@example.com")], "Password: must be at least 10"),
    ];
    for (fields, message) in cases {
        let browser = app.browser();
        let response = browser.submit("/signup", "/signup", fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let body = response.text().await.expect("body");
        assert!(body.contains(message), "{fields:?} should say {message:?}");
    }
    let response =
        app.browser().submit("/login", "/login", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), 400, "no account was created by the refused sign-ups");
}

async fn signup_refuses_a_taken_email(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.signed_in_user("taken@example.com").await;
    let response = app
        .browser()
        .submit(
            "/signup",
            "/signup",
            &[("name", "Other"), ("email", "TAKEN@example.com"), ("password", "another password")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.expect("body").contains("already exists"));
    // The original password still works.
    app.browser().log_in("taken@example.com", PASSWORD).await;
}

async fn login_redirects_to_next_with_a_new_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let first = app.signed_in_user("grace@example.com").await;
    let first_home = first.get_html("/").await;
    assert!(first_home.contains("Hello, Test User"));

    let browser = app.browser();
    let page = browser.get_html("/login?next=/workspaces").await;
    assert_eq!(hidden_value(&page, "next").as_deref(), Some("/workspaces"));
    let csrf = hidden_value(&page, "csrf_token").expect("csrf");
    let a = browser
        .post_raw(
            "/login",
            &[("csrf_token", &csrf), ("email", "grace@example.com"), ("password", PASSWORD), ("next", "/workspaces")],
        )
        .await;
    assert_eq!(a.status(), 303);
    assert_eq!(location(&a), "/workspaces");
    let session_a = a.headers().get("set-cookie").expect("cookie").to_str().expect("ascii").to_owned();

    let b = app.browser().log_in("grace@example.com", PASSWORD).await;
    let session_b = b.headers().get("set-cookie").expect("cookie").to_str().expect("ascii").to_owned();
    assert_ne!(session_a, session_b, "every login issues a new session id");
}

async fn login_says_the_same_for_an_unknown_email_and_a_wrong_password(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.signed_in_user("known@example.com").await;
    let mut bodies = Vec::new();
    for (email, password) in [("known@example.com", "wrong password!"), ("unknown@example.com", PASSWORD)] {
        let response = app.browser().submit("/login", "/login", &[("email", email), ("password", password)]).await;
        assert_eq!(response.status(), 400);
        assert!(response
            .headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap_or("").contains("tessera_session")));
        let body = response.text().await.expect("body");
        assert!(body.contains("Email or password is incorrect."));
        bodies.push(body.replace(email, "EMAIL"));
    }
    // Apart from the echoed email and the per-browser CSRF token, the two answers are identical.
    let strip = |b: &str| b.lines().filter(|l| !l.contains("csrf_token")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&bodies[0]), strip(&bodies[1]));
}

async fn login_next_must_stay_on_tesseras_origin(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.signed_in_user("nx@example.com").await;
    for next in ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", ""] {
        let response = app
            .browser()
            .submit("/login", "/login", &[("email", "nx@example.com"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/", "next={next:?} must not leave Tessera");
    }
}

async fn repeated_failed_logins_for_one_account_are_throttled(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("TESSERA_LOGIN_FAILURES_PER_ACCOUNT", "3")]).await;
    app.signed_in_user("target@example.com").await;
    for _ in 0..3 {
        let r = app
            .browser()
            .submit("/login", "/login", &[("email", "target@example.com"), ("password", "bad guess 123")])
            .await;
        assert_eq!(r.status(), 400);
    }
    let r = app.browser().submit("/login", "/login", &[("email", "target@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(r.status(), 429, "even the right password waits once the account is throttled");
    let retry_after: i64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry_after > 0 && retry_after <= 900);
    assert!(r.text().await.expect("body").contains("Too many failed attempts"));
    // Another account is not affected by this account's throttle.
    app.signed_in_user("bystander@example.com").await;

    // Guesses sent in parallel are counted before the password check: at most the limit get
    // an answer, whatever the concurrency.
    app.signed_in_user("parallel@example.com").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let browser = app.browser();
        let page = browser.get_html("/login").await;
        let csrf = hidden_value(&page, "csrf_token").expect("csrf");
        set.spawn(async move {
            let guess = format!("wrong guess {i}");
            let fields =
                [("csrf_token", csrf.as_str()), ("email", "parallel@example.com"), ("password", guess.as_str())];
            browser.post_raw("/login", &fields).await.status().as_u16()
        });
    }
    let statuses = set.join_all().await;
    let answered = statuses.iter().filter(|s| **s == 400).count();
    assert!(answered <= 3, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 400 || *s == 429), "{statuses:?}");
}

async fn repeated_failed_logins_from_one_address_are_throttled(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("TESSERA_LOGIN_FAILURES_PER_ADDRESS", "4")]).await;
    for i in 0..4 {
        let email = format!("guess{i}@example.com");
        let r = app.browser().submit("/login", "/login", &[("email", &email), ("password", "whatever 123")]).await;
        assert_eq!(r.status(), 400);
    }
    let r =
        app.browser().submit("/login", "/login", &[("email", "fresh@example.com"), ("password", "whatever 123")]).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

async fn logout_ends_the_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("bye@example.com").await;
    let home = browser.get_html("/").await;
    let csrf = hidden_value(&home, "csrf_token").expect("csrf");
    // Keep the session cookie to replay it after logout.
    let cookie_header = {
        let r = app.browser().submit("/login", "/login", &[("email", "bye@example.com"), ("password", PASSWORD)]).await;
        r.headers()["set-cookie"].to_str().expect("ascii").split(';').next().expect("pair").to_owned()
    };
    let r = browser.post_raw("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    assert_eq!(location(&browser.get("/").await), "/login?next=%2F");

    // The other session is untouched by this logout, and a replayed cookie of an ended session fails.
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let ok = replay.get(app.url("/")).header("cookie", &cookie_header).send().await.expect("GET");
    assert_eq!(ok.status(), 200);
    let second_home = ok.text().await.expect("body");
    let second_csrf = hidden_value(&second_home, "csrf_token").expect("csrf");
    let out = replay
        .post(app.url("/logout"))
        .header("cookie", &cookie_header)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={second_csrf}"))
        .send()
        .await
        .expect("POST");
    assert_eq!(out.status(), 303);
    let after = replay.get(app.url("/")).header("cookie", &cookie_header).send().await.expect("GET");
    assert_eq!(after.status(), 303, "an ended session no longer signs in");
}

async fn a_form_without_a_valid_csrf_token_is_refused_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("csrf@example.com").await;
    for token in [None, Some(""), Some("forged")] {
        let mut fields = vec![("name", "Sneaky")];
        if let Some(t) = token {
            fields.push(("csrf_token", t));
        }
        let r = browser.post_raw("/workspaces", &fields).await;
        assert_eq!(r.status(), 403, "token {token:?}");
        assert!(r.text().await.expect("body").contains("The form expired"));
    }
    // A token from another browser does not work either.
    let other = app.browser();
    let foreign = hidden_value(&other.get_html("/login").await, "csrf_token").expect("csrf");
    assert_eq!(browser.post_raw("/workspaces", &[("name", "Sneaky"), ("csrf_token", &foreign)]).await.status(), 403);
    // And login itself is protected against login CSRF.
    let r = app.browser().post_raw("/login", &[("email", "csrf@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(r.status(), 403);
    assert!(!browser.get_html("/").await.contains("Sneaky"));
}

async fn malformed_requests_get_a_readable_4xx(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("bad@example.com").await;
    let home = browser.get_html("/").await;
    let csrf = hidden_value(&home, "csrf_token").expect("csrf");

    let json = browser
        .client
        .post(app.url("/workspaces"))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"x\",\"csrf_token\":\"{csrf}\"}}"))
        .send()
        .await
        .expect("POST");
    assert_eq!(json.status(), 415);
    assert!(json.text().await.expect("body").contains("<h1>Unsupported form</h1>"));

    // A fresh connection: the server drops one whose oversized body it refused to read. The
    // form is the login form, which reads its body before anything else.
    let huge = format!("csrf_token={csrf}&name={}", "a".repeat(1024 * 1024));
    let fresh = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let r = fresh
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 413);

    let r = browser
        .client
        .post(app.url("/workspaces"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}&name=%FF%FE"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("not valid UTF-8"));

    let r = browser.post_raw("/workspaces", &[("csrf_token", &csrf), ("name", "   ")]).await;
    assert_eq!(r.status(), 400);

    assert_eq!(browser.get("/workspaces/ws_doesnotexist").await.status(), 404);
    assert_eq!(browser.get("/no/such/page").await.status(), 404);
    // Nothing was created by any of these.
    let after = browser.get_html("/").await;
    assert_eq!(after.matches("/workspaces/ws_").count(), home.matches("/workspaces/ws_").count());
}

async fn pages_that_need_a_login_send_you_there_and_back(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.browser();
    let r = browser.get("/workspaces/ws_x?tab=members").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?next=%2Fworkspaces%2Fws%5Fx%3Ftab%3Dmembers");
    let page = browser.get_html(&location(&r)).await;
    assert_eq!(hidden_value(&page, "next").as_deref(), Some("/workspaces/ws_x?tab=members"));
}
