use deed_manifest::Manifest;

/// Maps who ran a statement (database role, application_name) to a
/// service. What the manifest does not name is kept as `unknown:<name>`,
/// never dropped: an unknown writer is exactly what an audit must show.
pub struct Attribution<'m> {
    manifest: Option<&'m Manifest>,
}

impl<'m> Attribution<'m> {
    pub fn new(manifest: Option<&'m Manifest>) -> Self {
        Attribution { manifest }
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
        match (role.filter(|r| !r.is_empty()), application.filter(|a| !a.is_empty())) {
            (Some(r), _) => format!("unknown:{r}"),
            (None, Some(a)) => format!("unknown:{a}"),
            (None, None) => "unknown:?".to_string(),
        }
    }
}

/// Whether a service name stands for an unattributed role or application.
pub fn is_unknown(service: &str) -> bool {
    service.starts_with("unknown:")
}
