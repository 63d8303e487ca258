//! Payments through other banks (SPEC section 6, `docs/htlc.md`): the route a payer picks
//! from the chain's banks, the hops its HTLC carries, and the checks an intermediary makes
//! before it locks the next hop and a payee before it reveals its preimage.
//!
//! A route is a list of [`Hop`]s, one per bank from the payer to the payee: the amount locked
//! on that bank and the block it expires at. The payer adds the first hop's HTLC with the rest
//! attached ([`crate::HtlcUpdate::AddRouted`]); each intermediary checks what it is asked to
//! lock against what it was given ([`next_hop`]) and passes the rest on. The hops are not
//! hidden from the intermediaries (no onion): each sees the route after it.

pub use crate::message::Hop;
use crate::message::{Htlc, HtlcUpdate};
use sp_core::H256;
use sp_runtime::AccountId32;
use std::collections::{BTreeMap, BinaryHeap};
use vbank_primitives::{Balance, ChannelId};

/// The most hops a route may have: more can't be useful, and bounds what a peer can make us
/// keep.
pub const MAX_HOPS: usize = 20;

impl Hop {
	/// The update that locks this hop under `lock` as client `me` of its bank, asking the
	/// receiver to pass it on along `rest` (a plain `Add` when nothing is left).
	pub fn update(&self, me: u8, lock: H256, rest: &[Hop]) -> HtlcUpdate {
		let htlc = Htlc { from: me, amount: self.amount, hashlock: lock, expiry: self.expiry };
		match rest {
			[] => HtlcUpdate::Add(htlc),
			rest => HtlcUpdate::AddRouted { htlc, onward: rest.to_vec() },
		}
	}
}

/// A bank as a payer sees it when it looks for a route: its clients, and the most each can
/// send through it (exact for our own banks; the bank's total for others', whose split the
/// chain does not know).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
	pub channel: ChannelId,
	pub clients: [AccountId32; 2],
	pub can_send: [Balance; 2],
}

/// The expiries a route's HTLCs get: the payee's `final_delta` blocks from now, each hop
/// before it `delta` more, so that an intermediary who learns the preimage on the last
/// moment of its outgoing HTLC still has `delta` blocks to claim the incoming one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiries {
	pub delta: u32,
	pub final_delta: u32,
}

/// A route found: its hops from the payer's bank to the payee's, and the fees the
/// intermediaries take (what the first hop locks beyond the amount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
	pub hops: Vec<Hop>,
	pub fees: Balance,
}

/// The cheapest way found from an account to the payee: (hops, what it must send), and the
/// edge it takes with the account at its other end.
type Best<'a> = ((usize, Balance), Option<(usize, &'a AccountId32)>);

/// The route from `from` to `to` that carries `amount` with the fewest hops, then the lowest
/// fees (`fee` is what each intermediary takes), over `edges` that can send what each hop
/// must; `None` when no route has the capacity. Expiries count from block `now`.
pub fn find_route(
	edges: &[Edge],
	from: &AccountId32,
	to: &AccountId32,
	amount: Balance,
	fee: impl Fn(&AccountId32) -> Balance,
	expiries: Expiries,
	now: u32,
) -> Option<Route> {
	if from == to || amount == 0 {
		return None;
	}
	// Searched from the payee back to the payer, as each hop's amount depends on the fees of
	// the hops after it. `best[v]`: the cheapest way from v to the payee found, as (hops,
	// what v must send) and the edge it takes.
	let mut best: BTreeMap<&AccountId32, Best> = BTreeMap::new();
	let mut done = std::collections::BTreeSet::new();
	let mut queue = BinaryHeap::new();
	best.insert(to, ((0, amount), None));
	queue.push(std::cmp::Reverse(((0usize, amount), to)));
	while let Some(std::cmp::Reverse(((hops, sends), v))) = queue.pop() {
		if !done.insert(v) || v == from || hops >= MAX_HOPS {
			continue;
		}
		// What must reach v: what it sends on, plus its fee unless it is the payee.
		let arrives = if v == to { amount } else { sends.checked_add(fee(v))? };
		for (index, edge) in edges.iter().enumerate() {
			let Some(side) = edge.clients.iter().position(|c| c == v) else { continue };
			let u = &edge.clients[1 - side];
			if u == v || done.contains(u) || edge.can_send[1 - side] < arrives {
				continue;
			}
			let cost = (hops + 1, arrives);
			if best.get(u).is_none_or(|(known, _)| cost < *known) {
				best.insert(u, (cost, Some((index, v))));
				queue.push(std::cmp::Reverse((cost, u)));
			}
		}
	}
	let mut hops = Vec::new();
	let mut at = from;
	while let Some((_, Some((index, next)))) = best.get(at) {
		let (_, sends) = best[at].0;
		hops.push(Hop { channel: edges[*index].channel, amount: sends, expiry: 0 });
		at = next;
	}
	if at != to || hops.is_empty() {
		return None;
	}
	let last = hops.len() - 1;
	for (i, hop) in hops.iter_mut().enumerate() {
		let later = u32::try_from(last - i).ok()?;
		hop.expiry = now
			.checked_add(expiries.final_delta)?
			.checked_add(expiries.delta.checked_mul(later)?)?;
	}
	let fees = hops[0].amount - amount;
	Some(Route { hops, fees })
}

/// The fewest blocks an intermediary may keep between an outgoing HTLC's expiry and the
/// incoming one's (`--rsmc-htlc-delta`): under it, the margin left to go on chain and claim
/// ([`Forwarding::margin`]) can't hold a liquidation and a claim.
pub const MIN_DELTA: u32 = 12;

/// What an intermediary asks of an HTLC it forwards: `fee` for itself, and `delta` blocks
/// between the outgoing HTLC's expiry and the incoming one's; and `dust`, the amount under
/// which an HTLC is not worth a claim on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarding {
	pub fee: Balance,
	pub delta: u32,
	/// An HTLC of less is never a reason to go on chain (its claim would cost more than it
	/// brings, and a peer could force a liquidation, and the freeze of our share, for a
	/// planck: H1 of the HTLC review); it is settled or failed off chain, or left.
	pub dust: Balance,
}

impl Forwarding {
	/// How many blocks before an HTLC paid to us expires we go on chain to claim it when the
	/// peer has not taken our settlement: half the delta, and never fewer than 6 (a
	/// liquidation, its claim, and blocks to spare for a busy chain).
	pub fn margin(&self) -> u32 {
		(self.delta / 2).max(MIN_DELTA / 2)
	}

	/// The fewest blocks an HTLC paid to us as the payee must have left before we reveal its
	/// preimage: enough to go on chain and claim it if the peer takes the preimage and never
	/// settles (a last hop that waits for the HTLC to expire otherwise).
	pub fn min_final(&self) -> u32 {
		self.margin() + 2
	}
}

/// The hop an intermediary locks for `incoming`, which asks it to lock `onward` next, at block
/// `now`; refused (with why) when the next hop asks more than `incoming` brings less the fee,
/// leaves less than `delta` blocks before `incoming` expires, or has already expired.
pub fn next_hop<'a>(
	incoming: &Htlc,
	onward: &'a [Hop],
	forwarding: Forwarding,
	now: u32,
) -> Result<(&'a Hop, &'a [Hop]), &'static str> {
	let (next, rest) = onward.split_first().ok_or("no hop to forward to")?;
	if next.amount == 0 {
		return Err("the next hop locks nothing");
	}
	if next.amount.checked_add(forwarding.fee).is_none_or(|needed| needed > incoming.amount) {
		return Err("the next hop asks more than the incoming HTLC brings, less our fee");
	}
	if next.expiry.checked_add(forwarding.delta).is_none_or(|latest| latest > incoming.expiry) {
		return Err("the next hop expires too close to the incoming HTLC");
	}
	if next.expiry <= now.saturating_add(1) {
		return Err("the next hop has expired");
	}
	// No route expires further out than the longest a payer makes: our money is not locked
	// for longer than a route could need.
	let furthest = forwarding.delta.saturating_mul(MAX_HOPS as u32 + 1);
	if next.expiry > now.saturating_add(furthest) {
		return Err("the next hop expires too far in the future");
	}
	Ok((next, rest))
}

/// Whether a payee reveals its preimage for `htlc`, paid against an invoice of
/// `invoice_amount`, at block `now`: it brings the whole amount and leaves more than
/// `min_final` blocks ([`Forwarding::min_final`]) to claim it on chain should the peer take
/// the preimage and never settle.
pub fn payee_accepts(
	htlc: &Htlc,
	invoice_amount: Balance,
	now: u32,
	min_final: u32,
) -> Result<(), &'static str> {
	if htlc.amount < invoice_amount {
		return Err("the HTLC brings less than the invoice asks");
	}
	if htlc.expiry <= now.saturating_add(1) {
		return Err("the HTLC has expired");
	}
	if htlc.expiry <= now.saturating_add(min_final) {
		return Err("the HTLC expires too soon to be claimed on chain");
	}
	Ok(())
}

#[cfg(test)]
mod tests {
	use super::*;

	fn account(n: u8) -> AccountId32 {
		AccountId32::new([n; 32])
	}

	fn edge(channel: ChannelId, a: u8, b: u8, can_send: [Balance; 2]) -> Edge {
		Edge { channel, clients: [account(a), account(b)], can_send }
	}

	const EXPIRIES: Expiries = Expiries { delta: 10, final_delta: 20 };

	fn route(edges: &[Edge], from: u8, to: u8, amount: Balance, fee: Balance) -> Option<Route> {
		let payer = account(from);
		let fee = |who: &AccountId32| if *who == payer { 0 } else { fee };
		find_route(edges, &account(from), &account(to), amount, fee, EXPIRIES, 100)
	}

	#[test]
	fn a_direct_bank_is_a_route_of_one() {
		let edges = [edge(1, 1, 2, [50, 0])];
		let found = route(&edges, 1, 2, 50, 7).unwrap();
		assert_eq!(
			found,
			Route { hops: vec![Hop { channel: 1, amount: 50, expiry: 120 }], fees: 0 }
		);
		// The other way, client 1 has nothing to send.
		assert_eq!(route(&edges, 2, 1, 1, 0), None);
		assert_eq!(route(&edges, 1, 2, 51, 0), None);
	}

	#[test]
	fn each_earlier_hop_locks_the_later_fees_and_expires_delta_later() {
		// 1 - 2 - 3 - 4, each intermediary taking 5.
		let edges = [edge(7, 1, 2, [100, 0]), edge(8, 3, 2, [0, 100]), edge(9, 3, 4, [100, 0])];
		let found = route(&edges, 1, 4, 40, 5).unwrap();
		assert_eq!(
			found.hops,
			vec![
				Hop { channel: 7, amount: 50, expiry: 140 },
				Hop { channel: 8, amount: 45, expiry: 130 },
				Hop { channel: 9, amount: 40, expiry: 120 },
			]
		);
		assert_eq!(found.fees, 10);
		// The first hop must carry the fees too.
		assert_eq!(route(&edges, 1, 4, 91, 5), None);
		assert!(route(&edges, 1, 4, 90, 5).is_some());
	}

	#[test]
	fn the_fewest_hops_win_then_the_lowest_fees() {
		let cheap = account(5);
		let edges = [
			// 1 - 2 - 4, 1 - 5 - 4 (5 is cheaper), and 1 - 3 - 6 - 4 (longer).
			edge(1, 1, 2, [100, 0]),
			edge(2, 2, 4, [100, 0]),
			edge(3, 1, 5, [100, 0]),
			edge(4, 5, 4, [100, 0]),
			edge(5, 1, 3, [100, 0]),
			edge(6, 3, 6, [100, 0]),
			edge(7, 6, 4, [100, 0]),
		];
		let fee = |who: &AccountId32| if *who == cheap { 1 } else { 3 };
		let found = find_route(&edges, &account(1), &account(4), 10, fee, EXPIRIES, 0).unwrap();
		assert_eq!(found.hops.iter().map(|h| h.channel).collect::<Vec<_>>(), vec![3, 4]);
		assert_eq!(found.fees, 1);
		// Without capacity on the short routes, the long one.
		let mut narrow = edges.clone();
		narrow[1].can_send = [5, 0];
		narrow[3].can_send = [5, 0];
		let found = find_route(&narrow, &account(1), &account(4), 10, fee, EXPIRIES, 0).unwrap();
		assert_eq!(found.hops.iter().map(|h| h.channel).collect::<Vec<_>>(), vec![5, 6, 7]);
		assert_eq!(found.fees, 6);
	}

	#[test]
	fn no_route_to_oneself_nor_for_nothing_nor_to_a_stranger() {
		let edges = [edge(1, 1, 2, [100, 100])];
		assert_eq!(route(&edges, 1, 1, 10, 0), None);
		assert_eq!(route(&edges, 1, 2, 0, 0), None);
		assert_eq!(route(&edges, 1, 3, 10, 0), None);
	}

	fn htlc(amount: Balance, expiry: u32) -> Htlc {
		Htlc { from: 0, amount, hashlock: [1; 32].into(), expiry }
	}

	#[test]
	fn an_intermediary_forwards_only_what_it_was_given_less_its_fee_and_delta() {
		let policy = Forwarding { fee: 5, delta: 10, dust: 0 };
		let onward = [
			Hop { channel: 2, amount: 45, expiry: 120 },
			Hop { channel: 3, amount: 40, expiry: 110 },
		];
		let (next, rest) = next_hop(&htlc(50, 130), &onward, policy, 100).unwrap();
		assert_eq!((next, rest), (&onward[0], &onward[1..]));
		assert!(next_hop(&htlc(49, 130), &onward, policy, 100).unwrap_err().contains("more"));
		assert!(next_hop(&htlc(50, 129), &onward, policy, 100).unwrap_err().contains("close"));
		assert!(next_hop(&htlc(50, 130), &onward, policy, 119).unwrap_err().contains("expired"));
		assert!(next_hop(&htlc(50, 130), &[], policy, 100).is_err());
		let nothing = [Hop { channel: 2, amount: 0, expiry: 120 }];
		assert!(next_hop(&htlc(50, 130), &nothing, policy, 100).is_err());
		let huge = [Hop { channel: 2, amount: Balance::MAX, expiry: u32::MAX }];
		assert!(next_hop(&htlc(Balance::MAX, u32::MAX), &huge, policy, 100).is_err());
		// Our money locked for longer than any route needs: refused.
		let far = [Hop { channel: 2, amount: 45, expiry: 100 + 10 * 21 + 1 }];
		assert!(next_hop(&htlc(50, 1_000), &far, policy, 100).unwrap_err().contains("far"));
		let furthest = [Hop { channel: 2, amount: 45, expiry: 100 + 10 * 21 }];
		assert!(next_hop(&htlc(50, 1_000), &furthest, policy, 100).is_ok());
	}

	#[test]
	fn a_payee_reveals_only_for_the_whole_amount_before_expiry() {
		assert_eq!(payee_accepts(&htlc(40, 110), 40, 100, 2), Ok(()));
		assert!(payee_accepts(&htlc(39, 110), 40, 100, 2).is_err());
		assert!(payee_accepts(&htlc(40, 101), 40, 100, 2).is_err());
	}

	/// C6: a last hop that forwards with 2 blocks left would take the preimage, claim upstream
	/// and let the payee's HTLC expire; the payee reveals only with time to claim on chain.
	#[test]
	fn a_payee_keeps_its_preimage_for_an_htlc_too_short_to_claim_on_chain() {
		let forwarding = Forwarding { fee: 0, delta: 40, dust: 0 };
		let min_final = forwarding.min_final();
		assert_eq!(min_final, 22);
		let short = htlc(40, 102);
		assert!(payee_accepts(&short, 40, 100, min_final).unwrap_err().contains("too soon"));
		assert!(payee_accepts(&htlc(40, 100 + min_final), 40, 100, min_final).is_err());
		assert_eq!(payee_accepts(&htlc(40, 101 + min_final), 40, 100, min_final), Ok(()));
	}

	/// M4: whatever the delta, the margin left to claim on chain holds a liquidation and a
	/// claim, and the payee's minimum is within what a payer gives the last hop.
	#[test]
	fn the_margin_to_claim_never_shrinks_below_six_blocks() {
		for delta in [0, 1, 3, MIN_DELTA, 13, 40, 1_000] {
			let forwarding = Forwarding { fee: 0, delta, dust: 0 };
			assert!(forwarding.margin() >= 6, "delta {delta}");
			if delta >= MIN_DELTA {
				assert!(forwarding.min_final() <= delta, "delta {delta}");
			}
		}
	}
}
