//! Lifecycle events: a broadcast channel for live listeners and a bounded backlog for `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_api::event::{Event, EventActor};
use tokio::sync::broadcast;

const BACKLOG: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<Event>,
    backlog: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Events {
        Events { tx: broadcast::channel(4096).0, backlog: Mutex::new(VecDeque::with_capacity(BACKLOG)) }
    }
}

impl Events {
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let legacy = kind == "container" || kind == "image";
        let ev = Event {
            kind: kind.to_owned(),
            action: action.to_owned(),
            scope: "local".into(),
            time: now.as_secs() as i64,
            time_nano: now.as_nanos() as i64,
            status: legacy.then(|| action.to_owned()),
            id: legacy.then(|| id.to_owned()),
            from: attributes.get("image").cloned().filter(|_| kind == "container"),
            actor: EventActor { id: id.to_owned(), attributes },
        };
        {
            let mut b = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
            if b.len() == BACKLOG {
                b.pop_front();
            }
            b.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// The backlog at or after `since_nanos`, and a receiver for what comes next (subscribed
    /// first so that nothing falls between the two).
    pub fn subscribe(&self, since_nanos: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let rx = self.tx.subscribe();
        let past = match since_nanos {
            Some(s) => {
                let b = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
                b.iter().filter(|e| e.time_nano >= s).cloned().collect()
            }
            None => Vec::new(),
        };
        (past, rx)
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// `docker events --filter`: each key must match one of its values.
pub fn matches(ev: &Event, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| {
        vals.iter().any(|v| match k.as_str() {
            "type" => ev.kind == *v,
            "event" => ev.action == *v || ev.action.split(':').next() == Some(v.as_str()),
            "container" | "image" | "network" | "volume" => {
                ev.kind == *k
                    && (ev.actor.id.starts_with(v.as_str())
                        || ev.actor.attributes.get("name").is_some_and(|n| n == v))
                    || (k == "image" && ev.actor.attributes.get("image").is_some_and(|i| i == v))
            }
            "label" => {
                let (lk, lv) = v.split_once('=').map_or((v.as_str(), None), |(a, b)| (a, Some(b)));
                ev.actor.attributes.get(lk).is_some_and(|x| lv.is_none_or(|lv| x == lv))
            }
            "scope" => ev.scope == *v,
            _ => false,
        })
    })
}
