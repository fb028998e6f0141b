//! Who is using the console: a token exchanged for a session cookie at
//! login, the user's role, and the audit records of what they looked at.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use borderflow_engine::Storage;
use borderflow_types::RoleConfig;

use super::{Console, refuse};
use crate::flight_sql::Tokens;
use crate::flight_sql::roles::Roles;

/// The session cookie's name.
const COOKIE: &str = "borderflow_console";
/// A session lasts a shift.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Where a request came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Remote(pub SocketAddr);

/// A logged-in user.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub role: Arc<RoleConfig>,
    pub remote: Option<SocketAddr>,
}

/// The console's sessions, by cookie value.
pub(crate) struct Sessions {
    tokens: Tokens,
    roles: Roles,
    post_id: String,
    storage: Storage,
    open: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl Sessions {
    pub(crate) fn new(tokens: Tokens, roles: &[RoleConfig], post_id: &str, storage: Storage) -> Sessions {
        Sessions { tokens, roles: Roles::new(roles), post_id: post_id.to_string(), storage, open: Mutex::default() }
    }

    fn caller(&self, session: &str) -> Option<Caller> {
        let mut open = self.open.lock().ok()?;
        open.retain(|_, (_, until)| *until > Instant::now());
        open.get(session).map(|(caller, _)| caller.clone())
    }

    /// Writes one audit record, in the same form and folder as the
    /// analysts' queries (`audit/<post>/sql/<date>/<ulid>.json`), so the
    /// `audit_log` table shows the console's use beside theirs.
    pub(crate) async fn audit(&self, caller: &Caller, request: &str, sql: Option<&str>, parameters: &[&str], rows: Option<i64>, error: Option<&str>) {
        let now = chrono::Utc::now();
        let id = ulid::Ulid::new().to_string();
        let record = serde_json::json!({
            "post_id": self.post_id,
            "request": request,
            "user": caller.user,
            "role": caller.role.name,
            "auth": "console-session",
            "remote": caller.remote.map(|r| r.to_string()),
            "at": now.to_rfc3339(),
            "sql": sql,
            "command": serde_json::Value::Null,
            "parameters": parameters,
            "rows": rows,
            "bytes": serde_json::Value::Null,
            "error": error,
            "duration_ms": 0,
        });
        let path = format!("audit/{}/sql/{}/{id}.json", self.post_id, now.format("%Y-%m-%d"));
        let mut bytes = serde_json::to_vec(&record).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(error) = self.storage.put(&path, bytes).await {
            tracing::warn!(%error, %path, "writing the console's audit record failed");
        }
    }
}

fn cookie_of(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then(|| value.to_string())
    })
}

fn bearer_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(|t| t.trim().to_string())
}

impl FromRequestParts<Arc<Console>> for Caller {
    type Rejection = Response;

    /// The session cookie's user, or a bearer token's (scripts).
    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Self, Self::Rejection> {
        let remote = parts.extensions.get::<Remote>().map(|r| r.0);
        if let Some(session) = cookie_of(&parts.headers)
            && let Some(mut caller) = console.auth.caller(&session)
        {
            caller.remote = remote.or(caller.remote);
            return Ok(caller);
        }
        if let Some(token) = bearer_of(&parts.headers)
            && let Some(user) = console.auth.tokens.user(&token)
            && let Some(role) = console.auth.roles.of(user)
        {
            return Ok(Caller { user: user.to_string(), role, remote });
        }
        Err(refuse(StatusCode::UNAUTHORIZED, "log in first (a token of `[serve] tokens`)"))
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Login {
    token: String,
}

/// Exchanges a token for a session cookie; every attempt is audited.
pub(crate) async fn login(
    State(console): State<Arc<Console>>,
    remote: Option<axum::Extension<Remote>>,
    axum::Json(login): axum::Json<Login>,
) -> Response {
    let remote = remote.map(|r| r.0.0);
    let sessions = &console.auth;
    let user = sessions.tokens.user(login.token.trim()).map(str::to_string);
    let role = user.as_deref().and_then(|u| sessions.roles.of(u));
    let (Some(user), Some(role)) = (user.clone(), role) else {
        let nobody = Caller {
            user: user.unwrap_or_else(|| "(refused)".into()),
            role: Arc::new(RoleConfig { name: String::new(), read: Vec::new(), users: Vec::new() }),
            remote,
        };
        sessions.audit(&nobody, "Console.Login", None, &[], None, Some("unknown token or no role")).await;
        tracing::warn!(remote = ?remote, "console login refused");
        return refuse(StatusCode::UNAUTHORIZED, "unknown token, or a user without a role");
    };
    let Some(session) = random_session() else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "the system's random generator failed; no session");
    };
    let caller = Caller { user: user.clone(), role: role.clone(), remote };
    if let Ok(mut open) = sessions.open.lock() {
        open.insert(session.clone(), (caller.clone(), Instant::now() + SESSION_TTL));
    }
    sessions.audit(&caller, "Console.Login", None, &[], None, None).await;
    let secure = if console.tls { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", SESSION_TTL.as_secs());
    let body = serde_json::json!({ "user": user, "role": role.name }).to_string();
    ([(header::SET_COOKIE, cookie), (header::CONTENT_TYPE, "application/json".to_string())], body).into_response()
}

/// Ends the session of the cookie sent.
pub(crate) async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(session) = cookie_of(&headers)
        && let Ok(mut open) = console.auth.open.lock()
    {
        open.remove(&session);
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response()
}

/// 128 random bits from the operating system (through the TLS stack's
/// generator, which the post carries anyway), as hex.
fn random_session() -> Option<String> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider().secure_random.fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}
