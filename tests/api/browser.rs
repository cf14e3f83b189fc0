//! The console in a real browser (headless Chromium): what the HTTP-level tests cannot see, such
//! as the page's script moving the address bar off a shown-once secret.

use anyhow::{ensure, Context};
use fantoccini::{Client, Locator};
use tessera::store::Store;

use crate::helpers::browser::{run, WAIT};
use crate::helpers::{Engine, TestApp, PASSWORD};

async fn wait_for(client: &Client, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
    client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.with_context(|| format!("waiting for {css}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_creates_an_oauth_app_in_a_real_browser_and_sees_the_secret_once() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let email = "browser@example.com";
    let out = app.cli(&["admin", "create-user", "--email", email, "--password", PASSWORD, "--name", "Browser User"]);
    assert!(out.status.success(), "create-user failed: {}", String::from_utf8_lossy(&out.stderr));

    run("a_user_creates_an_oauth_app_in_a_real_browser_and_sees_the_secret_once", |client| async move {
        // Log in.
        client.goto(&app.url("/login")).await?;
        wait_for(&client, "input[name=email]").await?.send_keys(email).await?;
        client.find(Locator::Css("input[name=password]")).await?.send_keys(PASSWORD).await?;
        client.find(Locator::XPath("//button[normalize-space()='Log in']")).await?.click().await?;
        wait_for(&client, "form[action='/logout']").await.context("logged in")?;

        // From the integrations page, the "Create" link to the form.
        client.goto(&app.url("/settings/account/integrations")).await?;
        wait_for(&client, "#oauth-apps").await?;
        client.find(Locator::LinkText("Create")).await?.click().await?;
        wait_for(&client, "input[name=name]").await?.send_keys("Browser Partner").await?;
        let scope = client.find(Locator::Css("input[name=scope][value='caches:read']")).await?;
        scope.click().await?;
        ensure!(scope.is_selected().await?, "the caches:read box is ticked");
        client
            .find(Locator::Css("textarea[name=redirect_uris]"))
            .await?
            .send_keys("https://partner.example/callback")
            .await?;
        client.find(Locator::XPath("//button[normalize-space()='Create app']")).await?.click().await?;

        // The secret, shown once.
        let secret = wait_for(&client, "#client-secret").await?.text().await?.trim().to_owned();
        let client_id = client.find(Locator::Id("client-id")).await?.text().await?.trim().to_owned();
        ensure!(secret.starts_with("tes_sk_"), "secret looks like one: {secret:?}");
        ensure!(!client_id.is_empty(), "a client id is shown");
        let app_path = format!("/apps/{client_id}");
        ensure!(client.current_url().await?.path() == app_path, "the script replaced the URL with the app's page");

        // A reload lands on the app's own page, which never shows the secret.
        client.refresh().await?;
        wait_for(&client, "h1").await?;
        let url = client.current_url().await?;
        ensure!(url.path() == app_path, "after a reload the browser is at {url}, not {app_path}");
        ensure!(client.find_all(Locator::Css("#client-secret")).await?.is_empty(), "no #client-secret after a reload");
        let source = client.source().await?;
        ensure!(source.contains("Browser Partner"), "the app's page is shown");
        ensure!(!source.contains(&secret), "the secret is not in the page after a reload");

        // The server keeps only a hash, and it matches the secret the browser showed.
        let store = Store::connect(&app.db.url).await?;
        let found = tessera::apps::find(&store, &client_id).await?.context("the app exists")?;
        ensure!(found.secret_matches(&secret), "the stored hash matches the secret shown");
        Ok(())
    })
    .await;
}

/// A partner's callback: answers 200 so the browser settles on the URL that carries the code.
async fn partner_callback() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/callback", listener.local_addr().expect("addr"));
    let router =
        axum::Router::new().route("/callback", axum::routing::get(|| async { "Your account has been connected" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_authorizes_a_partner_in_a_real_browser_then_revokes_it_and_its_token_dies() {
    use crate::helpers::oauth::{api_status, post_as, query_param, register, CHALLENGE, VERIFIER};

    let app = TestApp::spawn(Engine::Sqlite).await;
    let email = "consent@example.com";
    let out = app.cli(&["admin", "create-user", "--email", email, "--password", PASSWORD, "--name", "Consenting User"]);
    assert!(out.status.success(), "create-user failed: {}", String::from_utf8_lossy(&out.stderr));
    let callback = partner_callback().await;
    let partner = register(&app, email, &[&callback], "caches:read databases:write", false);
    let auth_url = app.url(&format!(
        "/oauth2/auth?{}",
        crate::helpers::encode(&[
            ("response_type", "code"),
            ("client_id", &partner.id),
            ("redirect_uri", &callback),
            ("scope", "caches:read databases:write"),
            ("state", "browser-state"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    ));

    run("a_user_authorizes_a_partner_in_a_real_browser_then_revokes_it_and_its_token_dies", |client| async move {
        // Not logged in: /oauth2/auth leads to the login page, and back to the same request.
        client.goto(&auth_url).await?;
        wait_for(&client, "input[name=email]").await?.send_keys(email).await?;
        client.find(Locator::Css("input[name=password]")).await?.send_keys(PASSWORD).await?;
        client.find(Locator::XPath("//button[normalize-space()='Log in']")).await?.click().await?;

        // The consent page: the app, its scopes in words, a workspace picker; Allow.
        wait_for(&client, "select[name=workspace_id]").await.context("the consent page after login")?;
        let source = client.source().await?;
        ensure!(source.contains("Authorize Partner"), "the app is named");
        ensure!(source.contains("Create and delete your databases"), "scopes in plain words");
        client.find(Locator::Css("button[name=decision][value=allow]")).await?.click().await?;

        // The partner's callback receives code, state and iss.
        let deadline = tokio::time::Instant::now() + WAIT;
        while client.current_url().await?.path() != "/callback" {
            ensure!(tokio::time::Instant::now() < deadline, "never reached the partner's callback");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let landed = client.current_url().await?.to_string();
        ensure!(query_param(&landed, "state").as_deref() == Some("browser-state"), "state: {landed}");
        ensure!(query_param(&landed, "iss").as_deref() == Some(app.base.as_str()), "iss: {landed}");
        let code = query_param(&landed, "code").context("a code at the callback")?;
        ensure!(client.source().await?.contains("Your account has been connected"));

        let r = post_as(
            &app,
            "/oauth2/token",
            &partner,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &callback),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        ensure!(r.status() == 200, "code exchange: {}", r.status());
        let tokens: serde_json::Value = r.json().await?;
        let access = tokens["access_token"].as_str().context("access token")?.to_owned();
        ensure!(api_status(&app, &access).await == 200, "the token works before the revoke");

        // Settings -> Account -> Integrations: Revoke, confirm.
        client.goto(&app.url("/settings/account/integrations")).await?;
        wait_for(&client, "#authorized-apps").await?;
        let row = format!("tr[data-client-id='{}'] a", partner.id);
        client.find(Locator::Css(&row)).await?.click().await?;
        client.find(Locator::XPath("//button[normalize-space()='Revoke']")).await?.click().await?;
        wait_for(&client, "#authorized-apps").await?;
        ensure!(client.find_all(Locator::Css(&format!("tr[data-client-id='{}']", partner.id))).await?.is_empty());

        ensure!(api_status(&app, &access).await == 401, "the API rejects the token after the revoke");
        Ok(())
    })
    .await;
}
