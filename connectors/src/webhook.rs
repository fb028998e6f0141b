//! `[[webhook]]`: a view's new rows (risk flags, by default) POSTed as JSON
//! to an HTTP endpoint, at least once.
//!
//! The outbox is the view itself: its rows are rebuilt from the write-ahead
//! log after a crash, and what was delivered is kept in the post's store
//! (`webhooks/<name>/delivered.json`, the ids of delivered rows). At start
//! every row of the view's snapshot not delivered yet is queued, then each
//! row a commit adds. Rows go one at a time, in order; a failed POST (no
//! answer, a 5xx, a timeout) is tried again with exponential backoff from
//! one second up to `max_backoff`, the view's later rows waiting behind it.
//! A 4xx other than 408 and 429 is the receiver refusing the row for good:
//! it is logged and counted, and the next row goes.
//!
//! Each body is `{"id", "view", "post", "row"}`; the `Idempotency-Key`
//! header repeats the id (a receiver deduplicates by it: a crash between
//! the answer and the store's update sends a row again), and with a
//! `secret` the `X-Borderflow-Signature: sha256=<hex>` header is the
//! HMAC-SHA256 of the body.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borderflow_engine::Storage;
use borderflow_types::WebhookConfig;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::outbound::OutRow;

/// A webhook's state, for logs and `serve`'s status lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookStatus {
    pub name: String,
    /// Rows waiting.
    pub pending: usize,
    pub delivered: u64,
    /// Rows the receiver refused for good (a 4xx).
    pub refused: u64,
    /// Failed tries (each retried).
    pub failures: u64,
    pub last_error: Option<String>,
}

/// The running sender of one webhook.
#[derive(Clone)]
pub struct Webhook {
    pub view: String,
    rows: mpsc::UnboundedSender<Vec<OutRow>>,
    status: Arc<Mutex<WebhookStatus>>,
}

impl Webhook {
    /// Queues rows the view gained (those delivered already are skipped).
    pub fn send(&self, rows: Vec<OutRow>) {
        if !rows.is_empty() {
            let _ = self.rows.send(rows);
        }
    }

    pub fn status(&self) -> WebhookStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts the sender on the current tokio runtime; `snapshot` is the
    /// view's rows now (those not delivered yet are queued first).
    pub async fn start(config: WebhookConfig, post_id: &str, storage: Storage, snapshot: Vec<OutRow>) -> Result<Webhook, String> {
        let at = |e: String| format!("webhook `{}`: {e}", config.name);
        let secret = match &config.secret {
            Some(path) => Some(std::fs::read(path).map_err(|e| at(format!("secret {}: {e}", path.display())))?),
            None => None,
        };
        let client = reqwest::Client::builder().timeout(config.timeout).build().map_err(|e| at(e.to_string()))?;
        let delivered_path = format!("webhooks/{}/delivered.json", config.name);
        let delivered: BTreeMap<String, i64> = match storage.get(&delivered_path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| at(format!("{}: {e}", storage.describe(&delivered_path))))?,
            Err(_) => BTreeMap::new(),
        };
        // Ids of rows no longer in the view are forgotten: they will not be queued again.
        let in_view: HashSet<&str> = snapshot.iter().map(|r| r.id.as_str()).collect();
        let delivered: BTreeMap<String, i64> = delivered.into_iter().filter(|(id, _)| in_view.contains(id.as_str())).collect();
        let queue: VecDeque<OutRow> = snapshot.into_iter().filter(|r| !delivered.contains_key(&r.id)).collect();
        let status = Arc::new(Mutex::new(WebhookStatus { name: config.name.clone(), pending: queue.len(), ..WebhookStatus::default() }));
        let (rows, incoming) = mpsc::unbounded_channel();
        let view = config.view.clone();
        let sender = Sender { config, post_id: post_id.to_string(), storage, client, secret, delivered_path, delivered, queue, status: status.clone() };
        tokio::spawn(sender.run(incoming));
        Ok(Webhook { view, rows, status })
    }
}

struct Sender {
    config: WebhookConfig,
    post_id: String,
    storage: Storage,
    client: reqwest::Client,
    secret: Option<Vec<u8>>,
    delivered_path: String,
    delivered: BTreeMap<String, i64>,
    queue: VecDeque<OutRow>,
    status: Arc<Mutex<WebhookStatus>>,
}

enum Outcome {
    Delivered,
    Refused(String),
    Failed(String),
}

impl Sender {
    async fn run(mut self, mut incoming: mpsc::UnboundedReceiver<Vec<OutRow>>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            // Take what arrived; wait for rows when there are none.
            while let Ok(rows) = incoming.try_recv() {
                self.enqueue(rows);
            }
            if self.queue.is_empty() {
                match incoming.recv().await {
                    Some(rows) => self.enqueue(rows),
                    None => return,
                }
                continue;
            }
            let row = self.queue.front().cloned().expect("queue is not empty");
            match self.post(&row).await {
                Outcome::Delivered => {
                    backoff = Duration::from_secs(1);
                    self.queue.pop_front();
                    self.delivered.insert(row.id.clone(), chrono::Utc::now().timestamp_millis());
                    self.update(|s| {
                        s.delivered += 1;
                        s.last_error = None;
                    });
                    // The store's copy may lag behind a crash: the row is then sent again (same id).
                    if let Ok(bytes) = serde_json::to_vec(&self.delivered)
                        && let Err(error) = self.storage.put(&self.delivered_path, bytes).await
                    {
                        tracing::warn!(webhook = %self.config.name, %error, "the delivered rows could not be recorded; they may be sent again after a restart");
                    }
                }
                Outcome::Refused(error) => {
                    tracing::warn!(webhook = %self.config.name, id = %row.id, %error, "the receiver refused a row; it is not sent again");
                    self.queue.pop_front();
                    self.update(|s| {
                        s.refused += 1;
                        s.last_error = Some(error);
                    });
                }
                Outcome::Failed(error) => {
                    tracing::warn!(webhook = %self.config.name, id = %row.id, %error, retry_in_s = backoff.as_secs_f64(), "webhook delivery failed; trying again");
                    self.update(|s| {
                        s.failures += 1;
                        s.last_error = Some(error);
                    });
                    // Rows arriving meanwhile are queued, not lost.
                    let wait = tokio::time::sleep(backoff);
                    tokio::pin!(wait);
                    loop {
                        tokio::select! {
                            _ = &mut wait => break,
                            rows = incoming.recv() => match rows {
                                Some(rows) => self.enqueue(rows),
                                None => return,
                            },
                        }
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    fn enqueue(&mut self, rows: Vec<OutRow>) {
        for row in rows {
            if !self.delivered.contains_key(&row.id) && !self.queue.iter().any(|q| q.id == row.id) {
                self.queue.push_back(row);
            }
        }
        // `update` sets the pending count.
        self.update(|_| {});
    }

    fn update(&self, change: impl FnOnce(&mut WebhookStatus)) {
        if let Ok(mut status) = self.status.lock() {
            change(&mut status);
            status.pending = self.queue.len();
        }
    }

    async fn post(&self, row: &OutRow) -> Outcome {
        let body = row.body(&self.post_id).to_string();
        let mut request = self
            .client
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &row.id)
            .body(body.clone());
        if let Some(secret) = &self.secret {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
            mac.update(body.as_bytes());
            request = request.header("x-borderflow-signature", format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
        }
        match request.send().await {
            Ok(answer) if answer.status().is_success() => Outcome::Delivered,
            Ok(answer) => {
                let code = answer.status();
                let text = answer.text().await.unwrap_or_default();
                let error = format!("{} answered {code}: {}", self.config.url, text.chars().take(200).collect::<String>());
                if code.is_client_error() && code.as_u16() != 408 && code.as_u16() != 429 {
                    Outcome::Refused(error)
                } else {
                    Outcome::Failed(error)
                }
            }
            Err(error) => Outcome::Failed(format!("{}: {error}", self.config.url)),
        }
    }
}
