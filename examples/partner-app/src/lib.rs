//! An example partner of Tessera, as a partner would write it: a "Connect Tessera" button, the
//! authorization-code flow with PKCE and `state` through the `oauth2` crate, a developer API key
//! minted with the access token, then listing and creating databases. It refreshes the access
//! token when it expires and tells the user plainly when they denied or later revoked access.
//!
//! Sessions live in this process's memory: it is an example, not a product.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Environment};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the partner registered with Tessera.
#[derive(Clone, Debug)]
pub struct Config {
    pub tessera_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
}

type OAuthClient = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

struct Connection {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Instant,
    api_key: String,
    api_key_id: String,
}

#[derive(Default)]
struct Session {
    pending: Option<(PkceCodeVerifier, CsrfToken)>,
    connection: Option<Connection>,
}

struct App {
    config: Config,
    oauth: OAuthClient,
    http: oauth2::reqwest::Client,
    sessions: Mutex<HashMap<String, Session>>,
    pages: Environment<'static>,
}

type Shared = Arc<App>;

const COOKIE: &str = "partner_session";
const SCOPES: [&str; 2] = ["databases:read", "databases:write"];

pub fn router(config: Config) -> anyhow::Result<Router> {
    let oauth = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_client_secret(ClientSecret::new(config.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth2/auth", config.tessera_url))?)
        .set_token_uri(TokenUrl::new(format!("{}/oauth2/token", config.tessera_url))?)
        .set_redirect_uri(RedirectUrl::new(config.redirect_url.clone())?);
    // OAuth clients must not follow redirects from the token endpoint (SSRF).
    let http = oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build()?;
    let mut pages = Environment::new();
    pages.add_template("page.html", PAGE)?;
    let app = Arc::new(App { config, oauth, http, sessions: Mutex::new(HashMap::new()), pages });
    Ok(Router::new()
        .route("/", get(home))
        .route("/connect", get(connect))
        .route("/callback", get(callback))
        .route("/databases", post(create_database))
        .with_state(app))
}

pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> anyhow::Result<()> {
    axum::serve(listener, router(config)?).await?;
    Ok(())
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

impl App {
    fn render(&self, status: StatusCode, ctx: minijinja::Value) -> Response {
        match self.pages.get_template("page.html").and_then(|t| t.render(ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }

    fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(sessions.entry(id.to_owned()).or_default())
    }

    /// Sends the user to the page that says access was revoked, forgetting the dead connection.
    fn revoked(&self, id: &str) -> Response {
        self.with_session(id, |s| s.connection = None);
        self.render(
            StatusCode::OK,
            context! { state => "revoked", title => "Tessera access was revoked",
                message => "Tessera no longer accepts this app's credentials: the connection was revoked in Tessera. Connect again to continue." },
        )
    }

    /// A usable access token: refreshed first if it has expired. `None` means the user revoked us.
    async fn access_token(&self, id: &str) -> Option<String> {
        let (token, refresh, expired) = self.with_session(id, |s| {
            s.connection
                .as_ref()
                .map(|c| (c.access_token.clone(), c.refresh_token.clone(), c.expires_at <= Instant::now()))
        })?;
        if !expired {
            return Some(token);
        }
        let refreshed =
            self.oauth.exchange_refresh_token(&RefreshToken::new(refresh?)).request_async(&self.http).await.ok()?;
        let access = refreshed.access_token().secret().clone();
        self.with_session(id, |s| {
            if let Some(c) = s.connection.as_mut() {
                c.access_token = access.clone();
                c.refresh_token = refreshed.refresh_token().map(|r| r.secret().clone()).or(c.refresh_token.take());
                c.expires_at = Instant::now() + refreshed.expires_in().unwrap_or(Duration::from_secs(60));
            }
        });
        Some(access)
    }

    async fn api(&self, bearer: &str, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let mut request =
            self.http.request(method.parse()?, format!("{}{path}", self.config.tessera_url)).bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}

async fn home(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(id) = session_id(&headers) else {
        return app.render(StatusCode::OK, context! { state => "disconnected" });
    };
    let Some(api_key) =
        app.with_session(&id, |s| s.connection.as_ref().map(|c| (c.api_key.clone(), c.api_key_id.clone())))
    else {
        return app.render(StatusCode::OK, context! { state => "disconnected" });
    };
    // The access token checks the connection (refreshing it when it expired)...
    let Some(token) = app.access_token(&id).await else { return app.revoked(&id) };
    let workspace = match app.api(&token, "GET", "/v1/workspace", None).await {
        Ok((200, body)) => body,
        Ok((401, _)) => return app.revoked(&id),
        Ok((status, body)) => return error_page(&app, &format!("Tessera answered {status}: {body}")),
        Err(e) => return error_page(&app, &e.to_string()),
    };
    // ...and the developer API key does the work, as a partner's backend would.
    let databases = match app.api(&api_key.0, "GET", "/v1/databases?limit=100", None).await {
        Ok((200, body)) => body["items"].clone(),
        Ok((401, _)) => return app.revoked(&id),
        Ok((status, body)) => return error_page(&app, &format!("Tessera answered {status}: {body}")),
        Err(e) => return error_page(&app, &e.to_string()),
    };
    app.render(
        StatusCode::OK,
        context! { state => "connected", workspace => workspace["name"].clone(), api_key_id => api_key.1, databases },
    )
}

fn error_page(app: &App, message: &str) -> Response {
    app.render(StatusCode::BAD_GATEWAY, context! { state => "error", title => "Tessera could not be reached", message })
}

async fn connect(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let id = session_id(&headers).unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 32));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = app
        .oauth
        .authorize_url(CsrfToken::new_random)
        .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge)
        .url();
    app.with_session(&id, |s| s.pending = Some((verifier, state)));
    let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax");
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string()), (header::SET_COOKIE, cookie)]).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    let Some(id) = session_id(&headers) else {
        return error_page(&app, "no session: start again with Connect Tessera");
    };
    let Some((verifier, expected_state)) = app.with_session(&id, |s| s.pending.take()) else {
        return error_page(&app, "no authorization in progress: start again with Connect Tessera");
    };
    if q.state.as_deref() != Some(expected_state.secret().as_str()) {
        return error_page(&app, "the state parameter does not match: start again with Connect Tessera");
    }
    if let Some(error) = q.error {
        let (title, message) = if error == "access_denied" {
            (
                "You did not connect Tessera",
                "You denied access on Tessera's consent page. Connect again whenever you like.".to_owned(),
            )
        } else {
            ("Tessera refused the request", format!("{error}: {}", q.error_description.unwrap_or_default()))
        };
        return app.render(StatusCode::OK, context! { state => "denied", title, message });
    }
    let Some(code) = q.code else { return error_page(&app, "Tessera sent no code") };
    let tokens = match app
        .oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
    {
        Ok(t) => t,
        Err(e) => return error_page(&app, &format!("the code exchange failed: {e}")),
    };
    let access = tokens.access_token().secret().clone();
    // Upstash-style: a long-lived developer API key, minted once with the access token.
    let key = match app.api(&access, "POST", "/v1/api-keys", Some(json!({"name": "partner-app"}))).await {
        Ok((201, body)) => body,
        Ok((status, body)) => return error_page(&app, &format!("minting an API key failed ({status}): {body}")),
        Err(e) => return error_page(&app, &e.to_string()),
    };
    let connection = Connection {
        access_token: access,
        refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        expires_at: Instant::now() + tokens.expires_in().unwrap_or(Duration::from_secs(60)),
        api_key: key["api_key"].as_str().unwrap_or_default().to_owned(),
        api_key_id: key["id"].as_str().unwrap_or_default().to_owned(),
    };
    app.with_session(&id, |s| s.connection = Some(connection));
    Redirect::to("/").into_response()
}

#[derive(Deserialize)]
struct NewDatabase {
    name: String,
    region: String,
}

async fn create_database(State(app): State<Shared>, headers: HeaderMap, Form(form): Form<NewDatabase>) -> Response {
    let Some(id) = session_id(&headers) else { return Redirect::to("/").into_response() };
    let Some(key) = app.with_session(&id, |s| s.connection.as_ref().map(|c| c.api_key.clone())) else {
        return Redirect::to("/").into_response();
    };
    match app.api(&key, "POST", "/v1/databases", Some(json!({"name": form.name, "region": form.region}))).await {
        Ok((201, _)) => Redirect::to("/").into_response(),
        Ok((401, _)) => app.revoked(&id),
        Ok((_, body)) => app.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            context! { state => "error", title => "Tessera did not create the database", message => body.to_string() },
        ),
        Err(e) => error_page(&app, &e.to_string()),
    }
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Partner App</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:720px;margin:2rem auto;padding:0 1rem}
.button,button{display:inline-block;padding:.6rem 1rem;border-radius:6px;border:0;background:#0f766e;color:#fff;text-decoration:none;font:inherit;cursor:pointer}
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #ddd}.muted{color:#666}</style></head>
<body><h1>Partner App</h1>
{% if state == "disconnected" %}
  <p>Manage your Tessera databases without leaving the Partner App.</p>
  <p><a class="button" id="connect" href="/connect">Connect Tessera</a></p>
{% elif state == "connected" %}
  <h2 id="connected">Your account has been connected</h2>
  <p class="muted">Workspace <strong>{{ workspace }}</strong> · developer API key <code>{{ api_key_id }}</code></p>
  <h3>Databases</h3>
  {% if databases %}<table id="databases"><tr><th>Name</th><th>Region</th><th>State</th></tr>
  {% for d in databases %}<tr><td>{{ d.name }}</td><td>{{ d.region }}</td><td>{{ d.state }}</td></tr>{% endfor %}</table>
  {% else %}<p>No databases yet.</p>{% endif %}
  <h3>Create a database</h3>
  <form method="post" action="/databases">
    <label>Name <input name="name" required pattern="[a-z0-9-]{1,63}"></label>
    <label>Region <select name="region"><option>us-east-1</option><option>eu-west-1</option><option>ap-southeast-1</option></select></label>
    <button type="submit">Create database</button>
  </form>
{% else %}
  <h2 id="{{ state }}">{{ title }}</h2>
  <p>{{ message }}</p>
  <p><a class="button" id="connect" href="/connect">Connect Tessera again</a></p>
{% endif %}
</body></html>
"#;
