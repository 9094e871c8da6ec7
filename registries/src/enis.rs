//! ЕНИС: the unified notarial information system, answering for notarised
//! powers of attorney by number.

use std::sync::Arc;

use shep_proto::registry::v1::{LookupRequest, LookupResponse, PowerOfAttorney};

use crate::data::{RegistryData, RegistryKind};
use crate::{Registry, RegistryError};

/// ЕНИС over shared registry data.
#[derive(Debug, Clone)]
pub struct PowerOfAttorneyRegistry {
    data: Arc<RegistryData>,
}

impl PowerOfAttorneyRegistry {
    /// ЕНИС answering from `data`.
    pub fn new(data: Arc<RegistryData>) -> Self {
        Self { data }
    }

    /// The power of attorney with this number, if known (not audited).
    pub fn get(&self, number: &str) -> Option<PowerOfAttorney> {
        self.data.power_of_attorney(number)
    }
}

impl Registry for PowerOfAttorneyRegistry {
    fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, RegistryError> {
        self.data.lookup(RegistryKind::PowersOfAttorney, request)
    }
}
