//! Small named values shared by every node (e.g. the JWT signing key, stored encrypted).

use canopy_core::Error;

use crate::{Store, db_error};

pub async fn get_setting(store: &Store, name: &str) -> Result<Option<String>, Error> {
    on_write!(store, c => sqlx::query_scalar("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(c).await)
        .map_err(db_error)
}

/// Stores `value` unless the setting exists, then returns the stored value: nodes racing to
/// create a setting all end up with the first one written.
pub async fn put_setting_once(
    store: &Store,
    name: &str,
    value: &str,
    now: i64,
) -> Result<String, Error> {
    on_write!(store, c => sqlx::query(
        "INSERT INTO settings (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name).bind(value).bind(now).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    get_setting(store, name)
        .await?
        .ok_or_else(|| Error::internal(format!("setting {name} vanished")))
}
