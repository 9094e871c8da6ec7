//! The toolkit shared by the nodes of a cluster, so a test session behaves
//! the same whichever node its requests reach.
//!
//! Faults, scenarios and session fixture documents live in one key-value
//! bucket, `<PREFIX>_TOOLKIT` (history 1), one key each:
//! - `fault.<id>`: the `shep.admin.v1.Fault` as prepared by the node that
//!   took the AddFault (its `session` and `scenario` set, counts zero);
//! - `scenario.<name>`: the `shep.admin.v1.Scenario` (`applied` zero);
//! - `fixture.<session>.<name>`: a `shep.registry.v1.FixtureDocument` of a
//!   session (`<session>` is `=` for the global scope);
//! - `binding.<kind>.<value>`: a `shep.admin.v1.SessionBinding` as prepared
//!   by the node that took the BindSession (`<kind>` its `to` field's name,
//!   `<value>` normalised).
//!
//! (Ids and names become key tokens as the storage's subjects do.) An admin
//! change is written to the bucket, and every node, the writer too, applies
//! what its watch of the bucket delivers to its local toolkit, in bucket
//! order: the watch is the only writer of the local faults and scenarios, so
//! a node's own writes are applied once, like anyone else's, and the writer
//! answers once its watch applied its write. Calls read local memory only.
//! A fixture document is checked by applying it here before it is written
//! (the bucket then holds only documents that load); scenario files are
//! written at each node's start, so the node started last defines them.
//!
//! What stays per node: a fault's counts and its budget (`times`: a fault
//! that fires once may fire once on every node), its rate's random draws and
//! its time window (started when each node applied it); a scenario's
//! `applied` count; the registries' global fixtures (ReloadFixtures) and
//! which fixture records were used.
//!
//! The exchange journal is a stream, not a key (see [`journal`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use prost::Message as _;
use shep_proto::admin::v1::{Fault, Scenario, SessionBinding};
use shep_proto::registry::v1::FixtureDocument;
use shep_registries::fixtures::FixtureSource;
use shep_registries::{RegistryData, Scope};
use tokio::sync::watch;

use super::Toolkit;
use super::bindings::{Kind, Target};
use crate::storage::StorageError;
use crate::storage::jetstream::{JetStreamOptions, token, untoken};

mod journal;
#[cfg(test)]
mod tests;

/// How long a change waits for this node's watch to apply it.
const PATIENCE: Duration = Duration::from_secs(10);

/// The key token of the global scope in fixture keys (no session is empty).
const GLOBAL: &str = "";

/// This node's link to the shared toolkit.
#[derive(Debug)]
pub struct Shared {
    client: async_nats::Client,
    kv: kv::Store,
    /// The last bucket revision this node applied.
    applied: watch::Sender<u64>,
    /// `None` when this node does not record exchanges.
    journal: Option<journal::Journal>,
    /// The watch, the journal's follower and its publisher, stopped on close.
    tasks: crate::storage::jetstream::Tasks,
}

/// Connects to NATS, opens the bucket (and the exchange stream when the
/// journal is on), applies what they hold to `toolkit` and `fixtures`, and
/// attaches the link to `toolkit`.
pub async fn open(
    options: &JetStreamOptions,
    toolkit: Arc<Toolkit>,
    fixtures: Arc<RegistryData>,
) -> Result<Arc<Shared>, StorageError> {
    let client = crate::storage::jetstream::connect(&options.url, "shep-gateway-toolkit").await?;
    let mut context = jetstream::new(client.clone());
    context.set_timeout(PATIENCE);
    let kv = bucket(&context, options).await?;
    let node = format!("{:08x}", rand::random::<u32>());
    toolkit.faults.set_node(&node);
    toolkit.bindings.set_node(&node);
    let tasks = crate::storage::jetstream::Tasks::default();
    let journal = if toolkit.exchanges.recording() {
        let (journal, handles) = journal::Journal::open(
            &context,
            options,
            &node,
            toolkit.exchanges.capacity(),
            toolkit.clone(),
        )
        .await?;
        for handle in handles {
            tasks.keep(handle);
        }
        Some(journal)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        client,
        kv,
        applied: watch::channel(0).0,
        journal,
        tasks,
    });
    shared.watch(toolkit.clone(), fixtures).await?;
    if let Some(journal) = &shared.journal {
        toolkit.exchanges.share(journal.outbox());
    }
    toolkit.share(shared.clone());
    tracing::info!(node, prefix = %options.prefix, "toolkit shared through NATS");
    Ok(shared)
}

/// Opens `<PREFIX>_TOOLKIT`, creating it as `create_key_value` would:
/// that call first reads the account's limits in a form nats-server 2.9
/// does not answer in.
async fn bucket(
    context: &jetstream::Context,
    options: &JetStreamOptions,
) -> Result<kv::Store, StorageError> {
    const WHAT: &str = "open the toolkit's bucket";
    let name = format!("{}_TOOLKIT", options.prefix.to_uppercase());
    context
        .get_or_create_stream(stream::Config {
            name: format!("KV_{name}"),
            description: Some("the shep toolkit: faults, scenarios, session fixtures".to_owned()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            num_replicas: options.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..stream::Config::default()
        })
        .await
        .map_err(|error| StorageError::unavailable(WHAT, error))?;
    context
        .get_key_value(name)
        .await
        .map_err(|error| StorageError::unavailable(WHAT, error))
}

fn fault_key(id: &str) -> String {
    format!("fault.{}", token(id))
}

fn scenario_key(name: &str) -> String {
    format!("scenario.{}", token(name))
}

fn fixture_key(session: Option<&str>, name: &str) -> String {
    format!(
        "fixture.{}.{}",
        token(session.unwrap_or(GLOBAL)),
        token(name)
    )
}

fn binding_key(target: &Target) -> String {
    format!("binding.{}.{}", target.kind.name(), token(&target.value))
}

impl Shared {
    /// Shares `binding` of `target`, [`prepare`](super::Bindings::prepare)d
    /// here; returns once this node applied it.
    pub async fn put_binding(
        &self,
        target: &Target,
        binding: &SessionBinding,
    ) -> Result<(), StorageError> {
        self.put(binding_key(target), binding.encode_to_vec()).await
    }

    /// Removes the binding of `target` on every node.
    pub async fn delete_binding(&self, target: &Target) -> Result<(), StorageError> {
        self.delete(binding_key(target)).await
    }

    /// Shares fault `fault`, [`prepare`](super::Faults::prepare)d here;
    /// returns once this node applied it.
    pub async fn put_fault(&self, fault: &Fault) -> Result<(), StorageError> {
        self.put(fault_key(&fault.id), fault.encode_to_vec()).await
    }

    /// Removes fault `id` on every node.
    pub async fn delete_fault(&self, id: &str) -> Result<(), StorageError> {
        self.delete(fault_key(id)).await
    }

    /// Defines `scenario` on every node.
    pub async fn put_scenario(&self, scenario: &Scenario) -> Result<(), StorageError> {
        let scenario = Scenario {
            applied: 0,
            ..scenario.clone()
        };
        self.put(scenario_key(&scenario.name), scenario.encode_to_vec())
            .await
    }

    /// Puts fixture document `name` of `session` on every node (this node
    /// checked and applied it already).
    pub async fn put_fixture(
        &self,
        session: Option<&str>,
        name: &str,
        json: &str,
    ) -> Result<(), StorageError> {
        let document = FixtureDocument {
            name: name.to_owned(),
            json: json.to_owned(),
        };
        self.put(fixture_key(session, name), document.encode_to_vec())
            .await
    }

    /// Removes fixture document `name` of `session` on every node.
    pub async fn delete_fixture(
        &self,
        session: Option<&str>,
        name: &str,
    ) -> Result<(), StorageError> {
        self.delete(fixture_key(session, name)).await
    }

    /// Waits until this node's exchange journal holds every exchange this
    /// node recorded and every one the shared journal held when asked.
    pub async fn exchanges_caught_up(&self) -> Result<(), StorageError> {
        match &self.journal {
            Some(journal) => journal.catch_up().await,
            None => Ok(()),
        }
    }

    /// Removes the exchanges of `session` (all for `None`) on every node.
    pub async fn clear_exchanges(&self, session: Option<&str>) -> Result<(), StorageError> {
        match &self.journal {
            Some(journal) => journal.clear(session).await,
            None => Ok(()),
        }
    }

    /// Stops following the bucket and the journal.
    pub async fn close(&self) {
        self.tasks.stop();
        let _ = self.client.flush().await;
    }

    async fn put(&self, key: String, value: Vec<u8>) -> Result<(), StorageError> {
        let revision = self
            .kv
            .put(key, Bytes::from(value))
            .await
            .map_err(|error| StorageError::unavailable("write to the toolkit's bucket", error))?;
        self.applied(revision).await
    }

    async fn delete(&self, key: String) -> Result<(), StorageError> {
        self.kv.delete(key).await.map_err(|error| {
            StorageError::unavailable("delete from the toolkit's bucket", error)
        })?;
        // A delete does not say its revision: wait for the bucket's last.
        self.caught_up().await
    }

    /// Waits until this node applied the bucket's last revision.
    async fn caught_up(&self) -> Result<(), StorageError> {
        // Asked of the server: `kv::Store::status` answers the info cached
        // when the bucket was opened, which misses every later write.
        let info = self
            .kv
            .stream
            .get_info()
            .await
            .map_err(|error| StorageError::unavailable("read the toolkit's bucket", error))?;
        self.applied(info.state.last_sequence).await
    }

    async fn applied(&self, revision: u64) -> Result<(), StorageError> {
        let mut applied = self.applied.subscribe();
        match tokio::time::timeout(PATIENCE, applied.wait_for(|at| *at >= revision)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StorageError::unavailable(
                "follow the toolkit's bucket",
                format!("this node did not apply revision {revision} in {PATIENCE:?}"),
            )),
        }
    }

    /// Starts applying the bucket to `toolkit` and `fixtures`, from its
    /// start, and waits until what it holds now is applied.
    async fn watch(
        &self,
        toolkit: Arc<Toolkit>,
        fixtures: Arc<RegistryData>,
    ) -> Result<(), StorageError> {
        let mut entries = self
            .kv
            .watch_with_history(">")
            .await
            .map_err(|error| StorageError::unavailable("watch the toolkit's bucket", error))?;
        let applied = self.applied.clone();
        let task = tokio::spawn(async move {
            while let Some(entry) = entries.next().await {
                match entry {
                    Ok(entry) => {
                        apply(&toolkit, &fixtures, &entry);
                        applied.send_replace(entry.revision);
                    }
                    // The watch's consumer recreates itself; say so and go on.
                    Err(error) => tracing::warn!(%error, "watching the toolkit's bucket"),
                }
            }
            tracing::warn!("the toolkit's bucket watch ended: changes are no longer applied here");
        });
        self.tasks.keep(task.abort_handle());
        self.caught_up().await
    }
}

/// Applies one change of the bucket. An entry this node cannot read is
/// skipped with a warning: the toolkit is a test aid, and one bad key
/// should not stop the others.
fn apply(toolkit: &Toolkit, fixtures: &RegistryData, entry: &kv::Entry) {
    let put = entry.operation == kv::Operation::Put;
    let skip = |problem: &dyn std::fmt::Display| {
        tracing::warn!(key = %entry.key, %problem, "a toolkit bucket entry is skipped");
    };
    let mut parts = entry.key.splitn(3, '.');
    let (Some(kind), Some(first)) = (parts.next(), parts.next().and_then(untoken)) else {
        return skip(&"not a toolkit key");
    };
    match (kind, put) {
        ("fault", true) => match Fault::decode(entry.value.as_ref()) {
            Ok(fault) => toolkit.faults.insert(fault),
            Err(error) => skip(&error),
        },
        ("fault", false) => {
            toolkit.faults.remove(&first, None);
        }
        ("scenario", true) => match Scenario::decode(entry.value.as_ref()) {
            Ok(scenario) => {
                if let Err(error) = toolkit.scenarios.put(scenario) {
                    skip(&error);
                }
            }
            Err(error) => skip(&error),
        },
        ("scenario", false) => {
            toolkit.scenarios.remove(&first);
        }
        ("fixture", _) => {
            let Some(name) = parts.next().and_then(untoken) else {
                return skip(&"a fixture key without a document name");
            };
            let scope = if first == GLOBAL {
                Scope::Global
            } else {
                Scope::Session(&first)
            };
            if !put {
                if let Some(Err(error)) = fixtures.delete_document(scope, &name) {
                    skip(&error);
                }
                return;
            }
            match FixtureDocument::decode(entry.value.as_ref()) {
                Ok(document) => {
                    let source = FixtureSource::inline(&document.name, &document.json);
                    if let Err(error) = fixtures.put_document(scope, source) {
                        skip(&error);
                    }
                }
                Err(error) => skip(&error),
            }
        }
        ("binding", true) => match SessionBinding::decode(entry.value.as_ref()) {
            Ok(binding) => {
                if let Err(error) = toolkit.bindings.insert(&binding) {
                    skip(&error);
                }
            }
            Err(error) => skip(&error),
        },
        ("binding", false) => {
            let (Some(kind), Some(value)) = (Kind::named(&first), parts.next().and_then(untoken))
            else {
                return skip(&"a binding key without a kind or value");
            };
            toolkit.bindings.remove(&Target { kind, value });
        }
        _ => skip(&"not a toolkit key"),
    }
}
