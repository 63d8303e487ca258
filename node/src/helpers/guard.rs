//! Nothing a stranger or a peer sends may take the node down: a panic in an RPC method or in a
//! helper's task is caught, logged and answered as an error, while the chain, the other banks
//! and the watchtower go on. Substrate's panic handler ends the process on any panic unless the
//! panicking thread asked it to unwind ([`sp_panic_handler::AbortGuard::force_unwind`]): each
//! poll of a guarded future asks it so.

use futures::FutureExt;
use std::{
	any::Any,
	future::Future,
	panic::AssertUnwindSafe,
	pin::Pin,
	task::{Context, Poll},
};

/// A future polled with Substrate's panic handler set to unwind.
struct Unwinding<F>(Pin<Box<F>>);

impl<F: Future> Future for Unwinding<F> {
	type Output = F::Output;

	fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
		let _unwind = sp_panic_handler::AbortGuard::force_unwind();
		self.0.as_mut().poll(cx)
	}
}

/// What a panic said.
fn message(panic: Box<dyn Any + Send>) -> String {
	match panic.downcast::<String>() {
		Ok(text) => *text,
		Err(panic) => panic.downcast_ref::<&str>().map_or("a panic".into(), |s| s.to_string()),
	}
}

/// Run `future`; a panic in it is logged as `what` and comes back as its message.
pub async fn caught<F: Future>(what: &str, future: F) -> Result<F::Output, String> {
	AssertUnwindSafe(Unwinding(Box::pin(future))).catch_unwind().await.map_err(|panic| {
		let why = message(panic);
		log::error!(target: super::LOG, "💸 {what} panicked: {why}; the node goes on");
		why
	})
}

/// Run `f` at once, as [`caught`] runs a future.
pub fn caught_now<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
	let _unwind = sp_panic_handler::AbortGuard::force_unwind();
	std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
		let why = message(panic);
		log::error!(target: super::LOG, "💸 {what} panicked: {why}; the node goes on");
		why
	})
}

/// Spawn a helper's task, its panics caught.
pub fn spawn<F>(what: &'static str, future: F)
where
	F: Future + Send + 'static,
	F::Output: Send + 'static,
{
	tokio::spawn(async move {
		let _ = caught(what, future).await;
	});
}

#[cfg(test)]
mod tests {
	use super::*;

	#[tokio::test]
	async fn a_panic_in_a_guarded_future_is_its_error_and_the_process_goes_on() {
		// As the node does: Substrate's handler ends the process on a panic not guarded.
		sp_panic_handler::set("https://example.org", "test");
		let out = caught("a test", async {
			tokio::task::yield_now().await;
			if true {
				panic!("our own bank");
			}
			1
		})
		.await;
		assert_eq!(out, Err("our own bank".to_string()));
		assert_eq!(caught("a test", async { 2 }).await, Ok(2));
		let formatted = caught_now("a test", || -> u8 { panic!("bank {}", 7) });
		assert_eq!(formatted, Err("bank 7".to_string()));
	}
}
