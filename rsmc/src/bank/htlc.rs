//! HTLCs on a bank's sheets (SPEC section 6, `docs/htlc.md`): the updates that add, settle
//! and fail them, each carried by one round of the payment exchange, and the rules a helper
//! checks before it signs a sheet that applies one.

use super::Error;
use crate::{
	message::{Htlc, HtlcUpdate},
	route::MAX_HOPS,
};
use sp_core::H256;
use vbank_primitives::Balances;

/// The most HTLCs a sheet may carry: the runtime's `MaxHtlcs`, so that every sheet a helper
/// signs can be liquidated.
pub const MAX_HTLCS: usize = 30;

/// The most HTLCs one client may have pending to the other on a sheet: half of
/// [`MAX_HTLCS`], so that a peer filling every slot it may (slot jamming, H1 of the HTLC
/// review) still leaves the other direction its own.
pub const MAX_HTLCS_PER_SIDE: usize = MAX_HTLCS / 2;

/// The rules of the wire's [`HtlcUpdate`]s: what each does to a sheet, and when a helper
/// refuses one.
impl HtlcUpdate {
	/// The sheet that results from client `proposer` applying this update to a sheet with
	/// `balances` and `htlcs` pending; refused when the proposer may not make it.
	pub fn apply(
		&self,
		proposer: usize,
		balances: &Balances,
		htlcs: &[Htlc],
	) -> Result<(Balances, Vec<Htlc>), Error> {
		let mut balances = *balances;
		let mut htlcs = htlcs.to_vec();
		match self {
			Self::AddRouted { onward, .. } if onward.is_empty() || onward.len() > MAX_HOPS => {
				return Err(Error::BadHtlc("a route has from one to MAX_HOPS hops"));
			},
			Self::Add(htlc) | Self::AddRouted { htlc, .. } => {
				let from = usize::from(htlc.from);
				if htlc.from > 1 || from != proposer {
					return Err(Error::BadHtlc("only its payer adds an HTLC"));
				}
				if htlc.amount == 0 {
					return Err(Error::ZeroAmount);
				}
				if htlcs.iter().filter(|h| h.from == htlc.from).count() >= MAX_HTLCS_PER_SIDE {
					return Err(Error::BadHtlc(
						"the payer has as many HTLCs pending as one side of a bank may",
					));
				}
				let available = balances[from];
				balances[from] = available
					.checked_sub(htlc.amount)
					.ok_or(Error::InsufficientFunds { available, requested: htlc.amount })?;
				htlcs.push(htlc.clone());
			},
			Self::Settle { index, .. } => {
				let htlc = Self::take(&mut htlcs, *index, self.hashlock(), proposer)?;
				balances[proposer] = balances[proposer].saturating_add(htlc.amount);
			},
			Self::Fail { index, hashlock } => {
				let htlc = Self::take(&mut htlcs, *index, *hashlock, proposer)?;
				let from = usize::from(htlc.from);
				balances[from] = balances[from].saturating_add(htlc.amount);
			},
		}
		Ok((balances, htlcs))
	}

	/// Why the receiver of this update refuses it at block `now`, given the HTLCs pending on
	/// the sheet it applies to, if it does: a settlement of an HTLC that has expired or
	/// expires with the next block (the chain would refuse its claim; taking it off chain,
	/// the payer's upstream may be gone already: M1 of the HTLC review), or an HTLC added that
	/// could not be claimed before it expires (it would only sit on the sheets: L2).
	pub fn too_late(&self, htlcs: &[Htlc], now: u64) -> Option<Error> {
		let next = now.saturating_add(1);
		let expiry = match self {
			Self::Add(htlc) | Self::AddRouted { htlc, .. } => htlc.expiry,
			Self::Settle { index, .. } => htlcs.get(*index as usize)?.expiry,
			Self::Fail { .. } => return None,
		};
		(next >= u64::from(expiry)).then_some(Error::BadHtlc(
			"the HTLC expires before the chain could take it: too late to settle or add",
		))
	}

	/// Take pending HTLC `index`, locked under `hashlock`, out of `htlcs` for its receiver,
	/// `proposer`.
	fn take(
		htlcs: &mut Vec<Htlc>,
		index: u32,
		hashlock: H256,
		proposer: usize,
	) -> Result<Htlc, Error> {
		let index = index as usize;
		let htlc = htlcs.get(index).ok_or(Error::BadHtlc("no HTLC pending at this index"))?;
		if htlc.hashlock != hashlock {
			return Err(Error::BadHtlc("the HTLC at this index has another hashlock"));
		}
		if usize::from(htlc.from) == proposer {
			return Err(Error::BadHtlc("only its receiver settles or fails an HTLC"));
		}
		Ok(htlcs.remove(index))
	}
}
