//! How helpers reach each other: one request, one answer, behind the [`Transport`] trait (JSON-RPC
//! in the node, [`MemoryNetwork`] in tests), and [`answer`], what a helper says to a message from
//! anybody.

use crate::{
	bank::{Action, Progress},
	helper::{Helper, HelperError},
	message::Message,
	store::Store,
};
use sp_runtime::AccountId32;
use std::{
	collections::BTreeMap,
	future::Future,
	pin::Pin,
	sync::{Arc, Mutex},
	task::{Context, Poll},
};

/// Why a request brought no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
	/// The peer has a payment in flight on the bank: ask again once it is final.
	Busy(String),
	/// The peer refused the message; asking again changes nothing.
	Refused(String),
	/// The peer did not answer (unreachable, timed out): ask again until our timeout.
	Unreachable(String),
}

impl core::fmt::Display for Miss {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::Busy(e) => write!(f, "the peer is busy: {e}"),
			Self::Refused(e) => write!(f, "the peer refused: {e}"),
			Self::Unreachable(e) => write!(f, "the peer did not answer: {e}"),
		}
	}
}

/// Carries a message to the helper of a bank's other client and brings back its answer.
pub trait Transport: Send + Sync {
	/// `message` from `from` to `to`; `Ok(None)` when the peer has nothing to say.
	fn request(
		&self,
		from: &AccountId32,
		to: &AccountId32,
		message: &Message,
	) -> impl Future<Output = Result<Option<Message>, Miss>> + Send;

	/// Wait a moment before asking again.
	fn pause(&self) -> impl Future<Output = ()> + Send;
}

/// A helper's answer to a message from anybody: its reply, or why not, and what handling it
/// achieved. Duplicates, stale messages and messages not signed by the bank's other client
/// are answered with nothing and change nothing. The helper's lock is held only while the
/// message is handled.
pub fn answer<S: Store>(
	helper: &Mutex<Helper<S>>,
	message: &Message,
) -> (Result<Option<Message>, Miss>, Option<Progress>) {
	let handled = helper.lock().map_err(|e| e.to_string()).map(|mut h| h.handle(message));
	match handled {
		Ok(Ok(step)) => (Ok(step.reply), step.progress),
		Ok(Err(HelperError::Protocol(e))) => match e.action() {
			Action::Ignore => (Ok(None), None),
			Action::Retry => (Err(Miss::Busy(e.to_string())), None),
			Action::Refuse => (Err(Miss::Refused(e.to_string())), None),
		},
		Ok(Err(e)) => (Err(Miss::Refused(e.to_string())), None),
		Err(poisoned) => (Err(Miss::Refused(poisoned)), None),
	}
}

/// A future that lets others run once before it completes.
#[derive(Default)]
pub struct YieldNow(bool);

impl Future for YieldNow {
	type Output = ();

	fn poll(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<()> {
		if self.0 {
			return Poll::Ready(());
		}
		self.0 = true;
		cx.waker().wake_by_ref();
		Poll::Pending
	}
}

/// Helpers in one process, reached through memory: each request lets other tasks run before
/// it is delivered (so two helpers can act at the same instant); it can lose answers on the
/// way back, or fall silent.
pub struct MemoryNetwork<S> {
	helpers: BTreeMap<AccountId32, Arc<Mutex<Helper<S>>>>,
	/// Progress the receiving helpers made, by account, for tests to read.
	pub seen: Mutex<Vec<(AccountId32, Progress)>>,
	lose_every: Option<usize>,
	cut_after: Option<usize>,
	sent: Mutex<usize>,
}

impl<S: Store> MemoryNetwork<S> {
	pub fn new(helpers: impl IntoIterator<Item = (AccountId32, Arc<Mutex<Helper<S>>>)>) -> Self {
		Self {
			helpers: helpers.into_iter().collect(),
			seen: Default::default(),
			lose_every: None,
			cut_after: None,
			sent: Mutex::new(0),
		}
	}

	/// Deliver the first `n` requests, then none: the peer falls silent.
	pub fn cut_after(mut self, n: usize) -> Self {
		self.cut_after = Some(n);
		self
	}

	/// Lose every `n`th answer after the receiving helper handled its message.
	pub fn losing_every(mut self, n: usize) -> Self {
		self.lose_every = Some(n);
		self
	}
}

impl<S: Store> Transport for MemoryNetwork<S> {
	async fn request(
		&self,
		_from: &AccountId32,
		to: &AccountId32,
		message: &Message,
	) -> Result<Option<Message>, Miss> {
		YieldNow::default().await;
		if self.cut_after.is_some_and(|n| *self.sent.lock().expect("not poisoned") >= n) {
			return Err(Miss::Unreachable("the peer fell silent".into()));
		}
		let helper = self.helpers.get(to).ok_or_else(|| Miss::Unreachable(format!("no {to}")))?;
		let (reply, progress) = answer(helper, message);
		if let Some(progress) = progress {
			self.seen.lock().expect("not poisoned").push((to.clone(), progress));
		}
		let mut sent = self.sent.lock().expect("not poisoned");
		*sent += 1;
		if self.lose_every.is_some_and(|n| sent.is_multiple_of(n)) {
			return Err(Miss::Unreachable("the answer was lost".into()));
		}
		reply
	}

	async fn pause(&self) {
		YieldNow::default().await
	}
}
