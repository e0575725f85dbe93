//! The embedded default: librdkafka's in-process mock cluster.
//!
//! It speaks the Kafka protocol well enough for a zero-setup trial (produce,
//! consume, consumer groups, topic creation) but it is not a broker: no
//! persistence, nothing survives the process, and its transaction support is not
//! faithful. Delivery guarantees are tested against a real Apache Kafka broker.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

use crate::{Error, Result};

/// A running mock cluster, owned by a dedicated thread (the handle is not `Send`).
/// Dropping it stops the cluster; drop it only after every client is closed.
#[derive(Debug)]
pub struct EmbeddedKafka {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedKafka {
    /// Starts a mock cluster of `brokers` brokers with `topics` created.
    ///
    /// Topics are created through the mock's own API: the mock does not answer
    /// the Admin API's CreateTopics requests.
    pub fn start(brokers: i32, topics: &[&str], partitions: i32) -> Result<Self> {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".to_owned())
            .spawn(move || match MockCluster::new(brokers) {
                Ok(cluster) => {
                    for t in &topics {
                        if let Err(e) = cluster.create_topic(t, partitions, 1) {
                            let _ = ready_tx.send(Err(Error::Embedded(format!(
                                "cannot create topic {t}: {e}"
                            ))));
                            return;
                        }
                    }
                    let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                    // Block until told to stop (or the handle is dropped).
                    let _ = stop_rx.recv();
                    drop(cluster);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::Embedded(e.to_string())));
                }
            })
            .map_err(|e| Error::Embedded(e.to_string()))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| Error::Embedded("mock cluster thread died".to_owned()))??;
        Ok(Self {
            bootstrap,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The bootstrap servers of the mock cluster.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
