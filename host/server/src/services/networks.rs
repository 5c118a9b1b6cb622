//! The client networks each SMTP service tells apart (`mynetworks`,
//! `smtpd_client_event_limit_exceptions`), held with the restriction lists
//! in [`super::SmtpPolicies`] so that a reload swaps them together.

use std::sync::Arc;

use ipnet::IpNet;

use super::{Key, SmtpPolicies};
use crate::config::Service;

/// The client networks one SMTP service tells apart.
#[derive(Debug, Default)]
pub struct Networks {
    /// `mynetworks`: trusted clients (`permit_mynetworks`).
    pub mynetworks: Vec<IpNet>,
    /// `smtpd_client_event_limit_exceptions`: clients the per-client
    /// limits do not apply to.
    pub limit_exceptions: Vec<IpNet>,
}

impl Networks {
    pub(super) fn of(service: &Service) -> Networks {
        Networks {
            mynetworks: service.main.mynetworks.clone(),
            limit_exceptions: service.main.smtpd_client_event_limit_exceptions.clone(),
        }
    }
}

/// One service's view of the [`Networks`] in force.
#[derive(Debug, Clone)]
pub struct ServiceNetworks {
    pub(super) all: Arc<SmtpPolicies>,
    pub(super) key: Key,
}

impl ServiceNetworks {
    /// This service's networks now.
    pub fn current(&self) -> Arc<Networks> {
        let set = self.all.current.load();
        set.networks.get(&self.key).cloned().unwrap_or_default()
    }
}
