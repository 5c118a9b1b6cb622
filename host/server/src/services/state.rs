//! What one SMTP service's connections start with, held with the
//! restriction lists in [`super::SmtpPolicies`] so that a reload swaps them
//! together: its session settings (the service's `smtpd_*` parameters and
//! `-o` overrides) and the client networks it tells apart (`mynetworks`,
//! `smtpd_client_event_limit_exceptions`). A connection takes the state in
//! force when it arrives and keeps it to its end.

use std::sync::Arc;

use ipnet::IpNet;
use postern_smtp::{Anvil, SessionSettings};

use super::{Key, SmtpPolicies};
use crate::config::Service;

/// One SMTP service's settings and networks at one moment.
#[derive(Debug)]
pub struct ServiceState {
    /// The session settings (TLS, AUTH, limits).
    pub settings: Arc<SessionSettings>,
    /// `mynetworks`: trusted clients (`permit_mynetworks`).
    pub mynetworks: Vec<IpNet>,
    /// `smtpd_client_event_limit_exceptions`: clients the per-client
    /// limits do not apply to.
    pub limit_exceptions: Vec<IpNet>,
}

impl ServiceState {
    /// The state of `service`, counting its clients in `anvil` (kept
    /// across reloads: the per-client counts go on).
    pub(super) fn of(
        service: &Service,
        shared: &crate::tls::Shared,
        anvil: Arc<Anvil>,
    ) -> ServiceState {
        ServiceState {
            settings: Arc::new(crate::tls::service_settings(service, shared, anvil)),
            mynetworks: service.main.mynetworks.clone(),
            limit_exceptions: service.main.smtpd_client_event_limit_exceptions.clone(),
        }
    }

    /// The client counters its settings count in.
    pub(super) fn anvil(&self) -> Option<Arc<Anvil>> {
        self.settings.anvil.clone()
    }
}

/// One service's view of the [`ServiceState`] in force.
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    pub(super) all: Arc<SmtpPolicies>,
    pub(super) key: Key,
    /// The state it was registered with: what it keeps should its entry
    /// ever be missing.
    pub(super) start: Arc<ServiceState>,
}

impl ServiceHandle {
    /// This service's state now.
    pub fn current(&self) -> Arc<ServiceState> {
        let set = self.all.current.load();
        Arc::clone(set.state.get(&self.key).unwrap_or(&self.start))
    }
}
