//! `[[serve.role]]`: the analysts' roles, checked. A role has a unique name,
//! at least one grant (a table or view name, `*`, or `prefix*`), and users
//! that belong to no other role, so what a user may read is never the
//! accident of which role came first.

use std::collections::HashMap;

use toml::Spanned;

use super::checks::identifier;
use super::raw::RawRole;
use super::source::Source;
use super::{ConfigError, RoleConfig};

pub(super) fn roles(source: &Source<'_>, raw: Vec<RawRole>) -> Result<Vec<RoleConfig>, ConfigError> {
    let mut roles = Vec::with_capacity(raw.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut members: HashMap<String, String> = HashMap::new();
    for (i, role) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("serve.role[{}].{field}", i + 1);
        let name_span = role.name.span();
        let name = identifier(source, role.name, &at("name"), "role name")?;
        if let Some(first) = names.insert(name.clone(), i + 1) {
            return Err(source.error_at(name_span, at("name"), format!("role \"{name}\" is already defined (serve.role[{first}])")));
        }
        let read_span = role.read.span();
        let grants = role.read.into_inner();
        if grants.is_empty() {
            return Err(source.error_at(read_span, at("read"), "a role reads at least one table or view (`*` for all)"));
        }
        let read = grants.into_iter().map(|grant| grant_name(source, grant, &at("read"))).collect::<Result<Vec<_>, _>>()?;
        let mut users = Vec::with_capacity(role.users.len());
        for user in role.users {
            let span = user.span();
            let user = user.into_inner();
            if user.trim().is_empty() {
                return Err(source.error_at(span, at("users"), "a user name is empty"));
            }
            if let Some(other) = members.insert(user.clone(), name.clone()) {
                return Err(source.error_at(
                    span,
                    at("users"),
                    format!("user \"{user}\" is already in role \"{other}\"; a user is in one role"),
                ));
            }
            users.push(user);
        }
        roles.push(RoleConfig { name, read, users });
    }
    Ok(roles)
}

/// A grant: `*`, `prefix*`, or a table or view name.
fn grant_name(source: &Source<'_>, grant: Spanned<String>, field: &str) -> Result<String, ConfigError> {
    let span = grant.span();
    let text = grant.into_inner();
    let name = text.strip_suffix('*').unwrap_or(&text);
    if name.contains('*') || name.chars().any(|c| !(c.is_alphanumeric() || c == '_')) || (name.is_empty() && text.is_empty()) {
        return Err(source.error_at(
            span,
            field,
            format!("\"{text}\" is not a table or view name, `*` or `prefix*` (letters, digits and `_`)"),
        ));
    }
    Ok(text)
}
