//! `[mqtt]`: the post on a message bus (MQTT 3.1.1, rumqttc).
//!
//! Out: every new read on `reads_topic` (the JSON of a [`PlateRead`]),
//! every risk flag the views add on `flags_topic` (`{"id", "view", "post",
//! "row"}`, see [`crate::outbound`]), and each camera's health, retained, on
//! `<health_topic>/<camera>`; all QoS 1. Messages wait in an outbox of at
//! most `buffer` messages until the broker acknowledges them (PUBACK), so a
//! broker that goes away for a while loses nothing: they are sent again when
//! it is back. When the outbox is full, new messages are dropped and
//! counted; the engine thread never waits for the bus.
//!
//! In: with `input_topic`, reads in the same JSON are taken as another
//! source, on a second connection with a persistent session (the broker
//! keeps QoS 1 messages for the post while it is away). A message is
//! acknowledged only after the engine has logged its read; a malformed one
//! is logged with its topic and why, counted, and acknowledged (sending it
//! again would not mend it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borderflow_types::{MqttConfig, PlateRead};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::Notify;

use crate::engine_handle::{EngineHandle, FeedPush};

/// The bus's counters.
#[derive(Debug, Default)]
pub struct MqttCounters {
    /// Messages the broker acknowledged.
    pub published: AtomicU64,
    /// Messages dropped because the outbox was full.
    pub dropped: AtomicU64,
    /// Reads taken from the input topic.
    pub reads_in: AtomicU64,
    /// Input messages that were not reads.
    pub malformed_in: AtomicU64,
    /// Connections lost (either connection).
    pub disconnects: AtomicU64,
}

struct Message {
    seq: u64,
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    /// The packet id while it is in flight on the current connection.
    pkid: Option<u16>,
    /// Handed to the client on the current connection.
    sent: bool,
}

#[derive(Default)]
struct Outbox {
    messages: VecDeque<Message>,
    next_seq: u64,
    /// Sequence numbers handed to the client, waiting for their packet id (in order).
    awaiting_pkid: VecDeque<u64>,
}

/// The post's connection to the bus.
#[derive(Clone)]
pub struct Mqtt {
    config: MqttConfig,
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    pub counters: Arc<MqttCounters>,
}

impl Mqtt {
    /// Connects (in the background, retrying while the broker is away) on the
    /// current tokio runtime. `engine` takes the input topic's reads.
    pub fn start(config: MqttConfig, engine: EngineHandle) -> Mqtt {
        let mqtt = Mqtt { config: config.clone(), outbox: Arc::default(), wake: Arc::new(Notify::new()), counters: Arc::default() };
        let mut options = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_clean_session(true);
        // The client's own queue holds what is in flight; the outbox holds the rest.
        let (client, events) = AsyncClient::new(options, 64);
        tokio::spawn(mqtt.clone().publish_loop(client.clone()));
        tokio::spawn(mqtt.clone().event_loop(events));
        if let Some(topic) = config.input_topic.clone() {
            let mut options = MqttOptions::new(format!("{}-in", config.client_id), config.host.clone(), config.port);
            options.set_keep_alive(Duration::from_secs(5));
            options.set_clean_session(false);
            options.set_manual_acks(true);
            let (client, events) = AsyncClient::new(options, 64);
            tokio::spawn(mqtt.clone().input_loop(client, events, topic, engine));
        }
        mqtt
    }

    /// Messages waiting for the broker's acknowledgement.
    pub fn pending(&self) -> usize {
        self.outbox.lock().map(|o| o.messages.len()).unwrap_or(0)
    }

    fn queue(&self, topic: String, payload: Vec<u8>, retain: bool) {
        let Ok(mut outbox) = self.outbox.lock() else { return };
        if outbox.messages.len() >= self.config.buffer {
            drop(outbox);
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(topic, dropped, buffer = self.config.buffer, "MQTT outbox full: message dropped");
            }
            return;
        }
        let seq = outbox.next_seq;
        outbox.next_seq += 1;
        outbox.messages.push_back(Message { seq, topic, payload, retain, pkid: None, sent: false });
        drop(outbox);
        self.wake.notify_one();
    }

    /// Publishes new reads on `reads_topic`.
    pub fn publish_reads(&self, reads: &[PlateRead]) {
        for read in reads {
            if let Ok(payload) = serde_json::to_vec(read) {
                self.queue(self.config.reads_topic.clone(), payload, false);
            }
        }
    }

    /// Publishes rows a view added (risk flags) on `flags_topic`.
    pub fn publish_flags(&self, post_id: &str, rows: &[crate::outbound::OutRow]) {
        for row in rows {
            self.queue(self.config.flags_topic.clone(), row.body(post_id).to_string().into_bytes(), false);
        }
    }

    /// Publishes a camera's health, retained, on `<health_topic>/<camera>`.
    pub fn publish_health(&self, camera_id: &str, health: serde_json::Value) {
        self.queue(format!("{}/{camera_id}", self.config.health_topic), health.to_string().into_bytes(), true);
    }

    /// Hands messages not yet sent on this connection to the client, in order.
    async fn publish_loop(self, client: AsyncClient) {
        loop {
            let next = {
                let Ok(mut outbox) = self.outbox.lock() else { return };
                let found = outbox.messages.iter_mut().find(|m| !m.sent).map(|m| {
                    m.sent = true;
                    (m.seq, m.topic.clone(), m.payload.clone(), m.retain)
                });
                if let Some((seq, ..)) = &found {
                    outbox.awaiting_pkid.push_back(*seq);
                }
                found
            };
            match next {
                Some((_, topic, payload, retain)) => {
                    if client.publish(topic, QoS::AtLeastOnce, retain, payload).await.is_err() {
                        return;
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    async fn event_loop(self, mut events: EventLoop) {
        let mut connected = false;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    tracing::info!(broker = %format!("{}:{}", self.config.host, self.config.port), "MQTT connected");
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Ok(mut outbox) = self.outbox.lock()
                        && let Some(seq) = outbox.awaiting_pkid.pop_front()
                        && let Some(message) = outbox.messages.iter_mut().find(|m| m.seq == seq)
                    {
                        message.pkid = Some(pkid);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Ok(mut outbox) = self.outbox.lock()
                        && let Some(at) = outbox.messages.iter().position(|m| m.pkid == Some(ack.pkid))
                    {
                        outbox.messages.remove(at);
                        self.counters.published.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    if connected {
                        connected = false;
                        self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, pending = self.pending(), "MQTT connection lost; messages wait in the outbox");
                        // The client has moved what was in flight and in its
                        // queue to its own unbounded list to send again; the
                        // outbox is the one list (bounded, in order, acked by
                        // packet id): everything unacknowledged is sent again
                        // from it on the next connection.
                        events.pending.clear();
                        if let Ok(mut outbox) = self.outbox.lock() {
                            outbox.awaiting_pkid.clear();
                            for message in outbox.messages.iter_mut() {
                                message.pkid = None;
                                message.sent = false;
                            }
                        }
                        self.wake.notify_one();
                    } else {
                        // A failed connection attempt: what the client holds
                        // in its queue goes out, in order, once one succeeds.
                        tracing::debug!(%error, "MQTT broker not reachable");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn input_loop(self, client: AsyncClient, mut events: EventLoop, topic: String, engine: EngineHandle) {
        let mut connected = false;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    if let Err(error) = client.subscribe(topic.clone(), QoS::AtLeastOnce).await {
                        tracing::warn!(%error, topic, "MQTT subscribe failed");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    match serde_json::from_slice::<PlateRead>(&message.payload).map_err(|e| e.to_string()).and_then(check_read) {
                        Ok(read) => {
                            let push = FeedPush { source: format!("MQTT topic {}", message.topic), reads: vec![read], crops: Vec::new() };
                            match engine.push_reads(push).await {
                                Ok(taken) => {
                                    self.counters.reads_in.fetch_add(taken.new as u64, Ordering::Relaxed);
                                }
                                Err(error) => {
                                    // Not acknowledged: the broker sends it again after a reconnect.
                                    tracing::warn!(%error, topic = %message.topic, "a read from MQTT was not taken");
                                    continue;
                                }
                            }
                        }
                        Err(error) => {
                            self.counters.malformed_in.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(topic = %message.topic, %error, "MQTT message is not a read; dropped");
                        }
                    }
                    let _ = client.ack(&message).await;
                }
                Ok(_) => {}
                Err(error) => {
                    if connected {
                        connected = false;
                        self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "MQTT input connection lost");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// A read from the bus, checked as far as its JSON cannot say.
fn check_read(mut read: PlateRead) -> Result<PlateRead, String> {
    if read.read_id.trim().is_empty() || read.camera_id.trim().is_empty() || read.post_id.trim().is_empty() {
        return Err("read_id, post_id and camera_id must not be empty".to_string());
    }
    if read.plate_norm.is_empty() {
        read.plate_norm = borderflow_types::plate_norm(&read.plate_text);
    }
    if read.plate_norm.is_empty() {
        return Err(format!("plate_text \"{}\" has no letters or digits", read.plate_text));
    }
    if !(0.0..=1.0).contains(&read.confidence) {
        return Err(format!("confidence {} is not from 0 to 1", read.confidence));
    }
    Ok(read)
}
