//! The example partner app over HTTP: it connects, refreshes an expired access token by itself,
//! and explains a denied consent.

use crate::helpers::oauth::{decide, register};
use crate::helpers::{location, Browser, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(the_example_partner_connects_refreshes_and_explains_a_denial,);

/// Follows the partner's Connect button through Tessera's consent with `decision`; returns the
/// partner page the user lands on.
async fn connect(partner: &str, user: &Browser, decision: &str) -> String {
    let r = user.get(&format!("{partner}/connect")).await;
    let authorize = location(&r);
    let r = user.get(&authorize).await;
    let consent = location(&r);
    let html = user.get_html(&consent).await;
    let back = location(&decide(user, &html, decision, None).await);
    assert!(back.starts_with(&format!("{partner}/callback?")), "{back}");
    let r = user.get(&back).await;
    if r.status() == 303 {
        user.get_html(&format!("{partner}{}", location(&r))).await
    } else {
        r.text().await.expect("body")
    }
}

async fn the_example_partner_connects_refreshes_and_explains_a_denial(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("TESSERA_ACCESS_TOKEN_TTL", "3")]).await;
    let user = app.signed_in_user("user@example.com").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let partner = format!("http://{}", listener.local_addr().expect("addr"));
    let client =
        register(&app, "user@example.com", &[&format!("{partner}/callback")], "databases:read databases:write", false);
    let config = partner_app::Config {
        tessera_url: app.base.clone(),
        client_id: client.id.clone(),
        client_secret: client.secret.clone().expect("secret"),
        redirect_url: format!("{partner}/callback"),
    };
    tokio::spawn(partner_app::serve(listener, config));

    let landing = connect(&partner, &user, "allow").await;
    assert!(landing.contains("Your account has been connected"), "{landing}");

    // The access token expires after three seconds; the partner refreshes it and stays connected.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let page = user.get_html(&partner).await;
    assert!(page.contains("Your account has been connected"), "{page}");
    let r = user
        .client
        .post(format!("{partner}/databases"))
        .form(&[("name", "from-partner"), ("region", "eu-west-1")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    assert!(user.get_html(&partner).await.contains("from-partner"));

    // A user who denies gets a clear page with a way back.
    let denied = connect(&partner, &user, "deny").await;
    assert!(denied.contains("You did not connect Tessera") && denied.contains("Connect Tessera again"), "{denied}");
}
