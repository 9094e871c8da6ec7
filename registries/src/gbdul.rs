//! ГБД ЮЛ: the state database of legal entities, answering by BIN
//! (`GbdulInfoByBin_v2` in the real ШЭП).

use std::sync::Arc;

use shep_proto::registry::v1::{LegalEntity, LookupRequest, LookupResponse};

use crate::data::{RegistryData, RegistryKind};
use crate::{Registry, RegistryError};

/// ГБД ЮЛ over shared registry data.
#[derive(Debug, Clone)]
pub struct LegalEntityRegistry {
    data: Arc<RegistryData>,
}

impl LegalEntityRegistry {
    /// ГБД ЮЛ answering from `data`.
    pub fn new(data: Arc<RegistryData>) -> Self {
        Self { data }
    }

    /// The entity with this BIN, if known (not audited).
    pub fn get(&self, bin: &str) -> Option<LegalEntity> {
        self.data.legal_entity(bin)
    }
}

impl Registry for LegalEntityRegistry {
    fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, RegistryError> {
        self.data.lookup(RegistryKind::LegalEntities, request)
    }
}
