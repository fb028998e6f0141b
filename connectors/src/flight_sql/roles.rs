//! Who may read what: each admitted user's role from the post's
//! `[[serve.role]]`. Without roles every admitted user reads every table
//! and view but the audit log, as the role `analyst`; with roles, a user
//! in none is refused.

use std::collections::HashMap;
use std::sync::Arc;

use borderflow_types::RoleConfig;

/// The roles of a post's Flight SQL server, by user.
#[derive(Clone, Debug)]
pub struct Roles {
    by_user: HashMap<String, Arc<RoleConfig>>,
    /// The role of every user when the config names none.
    everyone: Option<Arc<RoleConfig>>,
}

impl Roles {
    pub fn new(roles: &[RoleConfig]) -> Roles {
        let everyone = roles
            .is_empty()
            .then(|| Arc::new(RoleConfig { name: "analyst".to_string(), read: vec!["*".to_string()], users: Vec::new() }));
        let mut by_user = HashMap::new();
        for role in roles {
            let role = Arc::new(role.clone());
            for user in &role.users {
                by_user.insert(user.clone(), Arc::clone(&role));
            }
        }
        Roles { by_user, everyone }
    }

    /// The role of `user`, if the user has one.
    pub fn of(&self, user: &str) -> Option<Arc<RoleConfig>> {
        self.by_user.get(user).or(self.everyone.as_ref()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, read: &[&str], users: &[&str]) -> RoleConfig {
        RoleConfig {
            name: name.into(),
            read: read.iter().map(|s| s.to_string()).collect(),
            users: users.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn without_roles_everyone_reads_all_but_the_audit_log() {
        let roles = Roles::new(&[]);
        let anyone = roles.of("someone").expect("a role");
        assert!(anyone.may_read("reads") && anyone.may_read("risk_flags_changes"));
        assert!(!anyone.may_read("audit_log"));
    }

    #[test]
    fn with_roles_a_user_reads_what_the_role_grants_and_a_stranger_nothing() {
        let roles = Roles::new(&[
            role("border-police", &["risk_flags", "cross_border_matches*"], &["desk-1"]),
            role("auditor", &["audit_log"], &["audit-1"]),
        ]);
        let police = roles.of("desk-1").expect("desk-1's role");
        assert!(police.may_read("risk_flags") && police.may_read("cross_border_matches_changes"));
        assert!(!police.may_read("reads") && !police.may_read("risk_flags_changes") && !police.may_read("audit_log"));
        let auditor = roles.of("audit-1").expect("audit-1's role");
        assert!(auditor.may_read("audit_log") && !auditor.may_read("reads"));
        assert!(roles.of("stranger").is_none());
    }
}
