use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::storage::Accepted;
use crate::storage::conformance::Backend;

/// A journal file of its own, removed with it.
struct TempJournal(PathBuf);

impl TempJournal {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "shep-journal-{name}-{}-{}.redb",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for TempJournal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[async_trait::async_trait]
impl Backend for TempJournal {
    async fn open(&self) -> Storage {
        open(&self.0).expect("opening the journal")
    }
}

crate::storage_conformance_tests!(
    #[tokio::test(start_paused = true)]
    || TempJournal::new("conformance")
);

fn accepted(id: &str) -> Entry {
    Entry::Accepted(Accepted {
        message_id: id.to_owned(),
        ..Accepted::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_a_reopen_in_order() {
    let file = TempJournal::new("reopen");
    {
        let (journal, replayed) = RedbJournal::open(&file.0).unwrap();
        assert!(replayed.is_empty());
        let tickets: Vec<Ticket> = (0..100)
            .map(|index| journal.append(accepted(&index.to_string())))
            .collect();
        for ticket in tickets {
            ticket.durable().await.unwrap();
        }
        journal.close().await;
    }
    let (journal, replayed) = RedbJournal::open(&file.0).unwrap();
    let ids: Vec<String> = replayed
        .iter()
        .map(|entry| match entry {
            Entry::Accepted(accepted) => accepted.message_id.clone(),
            Entry::Changed(_) => String::new(),
        })
        .collect();
    let expected: Vec<String> = (0..100).map(|index: i32| index.to_string()).collect();
    assert_eq!(ids, expected);
    journal.close().await;
    assert!(matches!(
        journal.append(accepted("late")).durable().await,
        Err(StorageError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_record_breaks_the_chain() {
    let file = TempJournal::new("tamper");
    {
        let (journal, _) = RedbJournal::open(&file.0).unwrap();
        for index in 0..5 {
            journal
                .append(accepted(&index.to_string()))
                .durable()
                .await
                .unwrap();
        }
        journal.close().await;
    }
    assert_eq!(verify_file(&file.0).unwrap(), 5);
    tamper(&file.0, 3).unwrap();
    let error = verify_file(&file.0).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Corrupt {
                sequence: 3,
                problem: Corruption::Edited
            }
        ),
        "{error}"
    );
    assert!(error.to_string().starts_with("record 3: "), "{error}");
    let refused = open(&file.0).expect_err("opened an edited journal");
    assert!(
        matches!(refused, StorageError::Corrupt { sequence: 3, .. }),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_become_visible_once_committed() {
    let file = TempJournal::new("visible");
    let storage = open(&file.0).unwrap();
    assert!(storage.is_durable());
    let mut live = storage.store.subscribe();
    let record = crate::storage::conformance::sample_application();
    let message_id = record.message_id.clone();
    assert_eq!(
        storage.store.insert(record).await.unwrap(),
        crate::storage::Inserted::New
    );
    let (event, ticket) = storage
        .store
        .record(&message_id, |_| {
            Ok::<_, StorageError>(crate::storage::Change::default())
        })
        .await
        .unwrap();
    // Published by the writer after the commit, before the ticket resolves.
    ticket.durable().await.unwrap();
    assert_eq!(live.try_recv().unwrap().sequence, event.sequence);
    assert!(
        storage
            .store
            .accepted_visible(&message_id, std::time::Duration::ZERO)
            .await
            .unwrap()
    );
    storage.close().await;
}
