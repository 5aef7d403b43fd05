//! Console logins: operators with Argon2id password hashes and a role.

use crate::domain::Role;
use crate::store::{Db, DbResult, now_ms};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the username is empty or has spaces")]
    BadUsername,
    #[error("an operator named `{0}` already exists")]
    Exists(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Operator {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
}

impl Operator {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Operator)
    }
}

pub fn hash_password(password: &str) -> Result<String, OperatorError> {
    // A fresh random salt per hash, drawn by the hasher.
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| OperatorError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

pub async fn create_operator(
    db: &Db,
    username: &str,
    password: &str,
    role: Role,
) -> Result<i64, OperatorError> {
    if username.is_empty() || username.chars().any(char::is_whitespace) {
        return Err(OperatorError::BadUsername);
    }
    if password.is_empty() {
        return Err(OperatorError::EmptyPassword);
    }
    let hash = hash_password(password)?;
    let r: DbResult<i64> = crate::on_db!(db, |c| {
        sqlx::query_scalar(
            "INSERT INTO operators (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(&hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_one(c)
        .await
    });
    match r {
        Err(e) if crate::store::is_unique_violation(&e) => {
            Err(OperatorError::Exists(username.to_string()))
        }
        other => Ok(other?),
    }
}

pub async fn find_operator(db: &Db, username: &str) -> DbResult<Option<Operator>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, Operator>(
            "SELECT id, username, password_hash, role FROM operators WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(c)
        .await
    })
}

pub async fn find_operator_by_id(db: &Db, id: i64) -> DbResult<Option<Operator>> {
    crate::on_db!(db, |c| {
        sqlx::query_as::<_, Operator>(
            "SELECT id, username, password_hash, role FROM operators WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
