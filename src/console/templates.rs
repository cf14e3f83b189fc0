//! Templates, compiled into the binary. HTML auto-escaping is on for every `.html` template, so
//! anything a user typed (an app name, a workspace name) is shown as text.

use std::sync::LazyLock;

use axum::response::Html;
use minijinja::{Environment, Value};

use super::PageError;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_filter("datetime", |seconds: i64| crate::time::display(seconds));
    env.add_filter("datetime_seconds", |seconds: i64| crate::time::display_seconds(seconds));
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("error.html", include_str!("templates/error.html")),
        ("signup.html", include_str!("templates/signup.html")),
        ("login.html", include_str!("templates/login.html")),
        ("home.html", include_str!("templates/home.html")),
        ("workspace.html", include_str!("templates/workspace.html")),
        ("workspace_delete.html", include_str!("templates/workspace_delete.html")),
        ("audit.html", include_str!("templates/audit.html")),
        ("apps.html", include_str!("templates/apps.html")),
        ("app_new.html", include_str!("templates/app_new.html")),
        ("app_fields.html", include_str!("templates/app_fields.html")),
        ("app.html", include_str!("templates/app.html")),
        ("app_secret.html", include_str!("templates/app_secret.html")),
        ("app_delete.html", include_str!("templates/app_delete.html")),
        ("consent.html", include_str!("templates/consent.html")),
        ("resources.html", include_str!("templates/resources.html")),
        ("revoke_confirm.html", include_str!("templates/revoke_confirm.html")),
        ("oauth_error.html", include_str!("templates/oauth_error.html")),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // Templates are part of the binary; a broken one is caught by the first test that renders it.
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env
});

pub fn render(name: &str, context: Value) -> Result<Html<String>, PageError> {
    TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(context))
        .map(Html)
        .map_err(|e| PageError::Internal(anyhow::anyhow!("template {name}: {e}")))
}

/// Renders without failing, for error pages themselves.
pub fn render_html(name: &str, context: Value) -> Html<String> {
    render(name, context)
        .unwrap_or_else(|_| Html("<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()))
}
