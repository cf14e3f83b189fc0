//! `cargo run -p partner-app` — see the README's "Try the partner flow".

use partner_app::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let listen = env("PARTNER_LISTEN").unwrap_or_else(|| "127.0.0.1:3000".into());
    let config = Config {
        tessera_url: env("TESSERA_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        client_id: env("CLIENT_ID").ok_or_else(|| anyhow::anyhow!("set CLIENT_ID to your Tessera app's client id"))?,
        client_secret: env("CLIENT_SECRET")
            .ok_or_else(|| anyhow::anyhow!("set CLIENT_SECRET to your Tessera app's client secret"))?,
        redirect_url: env("REDIRECT_URL").unwrap_or_else(|| "http://localhost:3000/callback".into()),
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!("partner app on http://{listen} (redirect URL {})", config.redirect_url);
    partner_app::serve(listener, config).await
}
