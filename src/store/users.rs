//! Users.

use sqlx::{Any, Executor, FromRow};

use super::StoreError;

#[derive(Clone, Debug, FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: i64,
}

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, user: &UserRow) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn by_email<'c>(db: impl Executor<'c, Database = Any>, email: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as("SELECT id, email, name, password_hash, created_at FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db)
        .await?)
}

pub async fn by_id<'c>(db: impl Executor<'c, Database = Any>, id: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as("SELECT id, email, name, password_hash, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?)
}
