//! How helpers reach each other, behind the [`Transport`] trait; [`MemoryNetwork`] carries
//! messages between helpers in one process and lets tests delay, repeat, reorder or drop them.

use crate::message::Message;
use sp_runtime::AccountId32;
use std::{
	collections::{BTreeMap, VecDeque},
	sync::Mutex,
};

/// Sends protocol messages to other parties' helpers.
pub trait Transport: Send + Sync {
	fn send(&self, to: &AccountId32, message: Message) -> Result<(), String>;
}

/// Queues of messages in memory, one per recipient.
#[derive(Default)]
pub struct MemoryNetwork {
	queues: Mutex<BTreeMap<AccountId32, VecDeque<Message>>>,
}

impl MemoryNetwork {
	/// Take the oldest message waiting for `who`.
	pub fn receive(&self, who: &AccountId32) -> Option<Message> {
		self.queues.lock().ok()?.get_mut(who)?.pop_front()
	}

	/// Take every message waiting for `who`, oldest first.
	pub fn drain(&self, who: &AccountId32) -> Vec<Message> {
		let mut queues = self.queues.lock().expect("not poisoned");
		queues.get_mut(who).map(|q| q.drain(..).collect()).unwrap_or_default()
	}

	/// How many messages wait for `who`.
	pub fn pending(&self, who: &AccountId32) -> usize {
		self.queues.lock().expect("not poisoned").get(who).map_or(0, VecDeque::len)
	}
}

impl Transport for MemoryNetwork {
	fn send(&self, to: &AccountId32, message: Message) -> Result<(), String> {
		self.queues
			.lock()
			.map_err(|e| e.to_string())?
			.entry(to.clone())
			.or_default()
			.push_back(message);
		Ok(())
	}
}
