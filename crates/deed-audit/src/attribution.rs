use deed_manifest::Manifest;

/// Maps who ran a statement (database role, application_name) to a
/// service. What the manifest does not name is kept as `unknown:<name>`,
/// never dropped: an unknown writer is exactly what an audit must show.
pub struct Attribution<'m> {
    manifest: Option<&'m Manifest>,
    /// Roles and applications whose statements are administration: the
    /// manifest's `[audit] admins`, superusers, and the role deed itself
    /// connects as. Reported as `admin:<name>`, never as findings.
    admins: std::collections::HashSet<String>,
}

impl<'m> Attribution<'m> {
    pub fn new(manifest: Option<&'m Manifest>) -> Self {
        let admins = manifest.map(|m| m.admins.iter().cloned().collect()).unwrap_or_default();
        Attribution { manifest, admins }
    }

    /// Adds roles known to be administrators (superusers, deed's own).
    pub fn with_admins(mut self, roles: impl IntoIterator<Item = String>) -> Self {
        self.admins.extend(roles);
        self
    }

    /// The service a role acts for: a login of it, or its owner role
    /// (`deed_<service>_owner`).
    pub fn service_for_role(&self, role: &str) -> String {
        let owner_of = role.strip_prefix("deed_").and_then(|r| r.strip_suffix("_owner"));
        if let (Some(m), Some(service)) = (self.manifest, owner_of) {
            if m.service(service).is_some() {
                return service.to_string();
            }
        }
        self.service(Some(role), None)
    }

    /// An application name the manifest lists wins over the role, since
    /// several programs may share one role; then the role's service.
    pub fn service(&self, role: Option<&str>, application: Option<&str>) -> String {
        if let Some(m) = self.manifest {
            if let Some(s) =
                application.filter(|a| !a.is_empty()).and_then(|a| m.service_for_application(a))
            {
                return s.name.clone();
            }
            if let Some(s) = role.and_then(|r| m.service_for_login(r)) {
                return s.name.clone();
            }
        }
        if let Some(a) = application.filter(|a| self.admins.contains(*a)) {
            return format!("admin:{}", deed_text::printable(a));
        }
        if let Some(r) = role.filter(|r| self.admins.contains(*r)) {
            return format!("admin:{}", deed_text::printable(r));
        }
        match (role.filter(|r| !r.is_empty()), application.filter(|a| !a.is_empty())) {
            (Some(r), _) => format!("unknown:{}", deed_text::printable(r)),
            (None, Some(a)) => format!("unknown:{}", deed_text::printable(a)),
            (None, None) => "unknown:?".to_string(),
        }
    }
}

/// Whether a service name stands for an unattributed role or application.
pub fn is_unknown(service: &str) -> bool {
    service.starts_with("unknown:")
}

/// Whether a service name stands for an administrator or migration tool.
pub fn is_admin(service: &str) -> bool {
    service.starts_with("admin:")
}
