//! The operator CLI: JSON on stdout, JSON errors on stderr with exit status 1, and writes that a
//! running server sees at once.

use crate::helpers::{stdout_json, Engine, TestApp, PASSWORD};
use crate::on_both_engines;

on_both_engines!(
    admin_commands_print_json_and_a_running_server_sees_their_writes,
    admin_commands_refuse_bad_input_with_a_json_error,
);

async fn admin_commands_print_json_and_a_running_server_sees_their_writes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let user = stdout_json(&app.cli(&[
        "admin",
        "create-user",
        "--email",
        "ops@example.com",
        "--password",
        PASSWORD,
        "--name",
        "Ops",
    ]));
    assert_eq!(user["email"], "ops@example.com");
    assert!(user["id"].as_str().expect("id").starts_with("usr_"));
    let workspace =
        stdout_json(&app.cli(&["admin", "create-workspace", "--name", "Platform", "--owner", "ops@example.com"]));
    assert_eq!(workspace["name"], "Platform");
    let id = workspace["id"].as_str().expect("id").to_owned();
    stdout_json(&app.cli(&["admin", "create-user", "--email", "dev@example.com", "--password", PASSWORD]));
    let member = stdout_json(&app.cli(&[
        "admin",
        "add-member",
        "--workspace",
        &id,
        "--email",
        "dev@example.com",
        "--role",
        "admin",
    ]));
    assert_eq!(member["role"], "admin");

    // The server that was already running sees all of it.
    let browser = app.browser();
    browser.log_in("dev@example.com", PASSWORD).await;
    let page = browser.get_html(&format!("/workspaces/{id}")).await;
    assert!(page.contains("<h1>Platform</h1>") && page.contains("ops@example.com") && page.contains(">admin<"));
}

async fn admin_commands_refuse_bad_input_with_a_json_error(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    stdout_json(&app.cli(&["admin", "create-user", "--email", "ops@example.com", "--password", PASSWORD]));
    let cases: &[(&[&str], &str)] = &[
        (&["admin", "create-user", "--email", "nope", "--password", PASSWORD], "email"),
        (&["admin", "create-user", "--email", "short@example.com", "--password", "short"], "password"),
        (&["admin", "create-user", "--email", "ops@example.com", "--password", PASSWORD], "already exists"),
        (&["admin", "create-workspace", "--name", "X", "--owner", "ghost@example.com"], "user not found"),
        (&["admin", "create-workspace", "--name", "", "--owner", "ops@example.com"], "name"),
        (
            &["admin", "add-member", "--workspace", "ws_missing", "--email", "ops@example.com", "--role", "admin"],
            "workspace not found",
        ),
    ];
    for (args, expected) in cases {
        let out = app.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        let error: serde_json::Value = serde_json::from_slice(&out.stderr).expect("stderr is JSON");
        let message = error["error"].as_str().expect("error message");
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    // clap refuses a role outside admin|member before anything runs.
    let out = app.cli(&["admin", "add-member", "--workspace", "w", "--email", "ops@example.com", "--role", "king"]);
    assert!(!out.status.success());
}
