//! Scenarios: named setups (fixture documents and faults, in order) defined
//! from files at start or over the admin API, applied per session.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

use prost_reflect::{DescriptorPool, DynamicMessage};
use shep_proto::admin::v1::Scenario;

/// The shep protos' descriptors, for JSON in and out (the admin HTTP face's pool).
fn descriptors() -> &'static DescriptorPool {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        crate::admin_http::descriptor_pool().expect("the build's own descriptor sets decode")
    })
}

/// Reads a scenario file: the `shep.admin.v1.Scenario` message as JSON
/// (`.json`) or the same structure as TOML (anything else).
pub fn read_file(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading scenario `{}`: {error}", path.display()))?;
    let json: serde_json::Value = if path.extension().is_some_and(|ext| ext == "json") {
        serde_json::from_str(&text)
            .map_err(|error| format!("scenario `{}`: {error}", path.display()))?
    } else {
        let value: toml::Value = toml::from_str(&text)
            .map_err(|error| format!("scenario `{}`: {error}", path.display()))?;
        serde_json::to_value(value)
            .map_err(|error| format!("scenario `{}`: {error}", path.display()))?
    };
    from_json(json).map_err(|error| format!("scenario `{}`: {error}", path.display()))
}

/// A scenario from its proto3 JSON form.
pub fn from_json(json: serde_json::Value) -> Result<Scenario, String> {
    let descriptor = descriptors()
        .get_message_by_name("shep.admin.v1.Scenario")
        .ok_or("the descriptor set lacks shep.admin.v1.Scenario")?;
    let message =
        DynamicMessage::deserialize(descriptor, json).map_err(|error| error.to_string())?;
    message
        .transcode_to::<Scenario>()
        .map_err(|error| error.to_string())
}

/// The defined scenarios, by name.
#[derive(Debug, Default)]
pub struct Scenarios {
    defined: RwLock<BTreeMap<String, Scenario>>,
}

impl Scenarios {
    /// Defines `scenario`, replacing one of the same name (its use count stays).
    pub fn put(&self, mut scenario: Scenario) -> Result<Scenario, String> {
        if scenario.name.trim().is_empty() {
            return Err("`name` is required".to_owned());
        }
        let mut defined = self.defined.write().unwrap_or_else(|p| p.into_inner());
        scenario.applied = defined.get(&scenario.name).map_or(0, |old| old.applied);
        defined.insert(scenario.name.clone(), scenario.clone());
        Ok(scenario)
    }

    /// Every scenario, by name.
    pub fn list(&self) -> Vec<Scenario> {
        self.defined
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Scenario `name`, as defined here.
    pub fn get(&self, name: &str) -> Option<Scenario> {
        self.defined
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Forgets scenario `name`; whether it was defined.
    pub fn remove(&self, name: &str) -> bool {
        self.defined
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .is_some()
    }

    /// Scenario `name` for applying, counting the use.
    pub fn take(&self, name: &str) -> Option<Scenario> {
        let mut defined = self.defined.write().unwrap_or_else(|p| p.into_inner());
        let found = defined.get_mut(name)?;
        found.applied += 1;
        Some(found.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_reads_from_toml_with_proto_json_names() {
        let dir = std::env::temp_dir().join(format!("shep-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("slow.toml");
        std::fs::write(
            &path,
            r#"
name = "slow-gbdul"
description = "ГБД ЮЛ answers in 3 s, then fails once"
[[faults]]
target = { registry = "gbdul" }
delay = { fixedMs = 3000 }
pass = true
times = 1
[[faults]]
target = { registry = "gbdul" }
error = { code = "UNAVAILABLE", message = "ГБД ЮЛ недоступна" }
times = 1
"#,
        )
        .unwrap();
        let scenario = read_file(&path).unwrap();
        assert_eq!(scenario.name, "slow-gbdul");
        assert_eq!(scenario.faults.len(), 2);
        assert_eq!(scenario.faults[1].times, 1);
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "name = \"x\"\n[[faults]]\nrate = \"often\"\n").unwrap();
        let error = read_file(&bad).unwrap_err();
        assert!(error.contains("bad.toml"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
