//! The RSMC helper: the off-chain half of a virtual bank (SPEC section 4), what each party
//! runs to pay and be paid without touching the chain.
//!
//! - [`bank`]: the protocol core, pure state and transitions with no I/O;
//! - [`secrets`]: waiver secrets, BOLT #3's per-commitment secrets and their compact store;
//! - [`keys`]: the account signer and the waiver key pairs;
//! - [`message`]: what helpers say to each other;
//! - [`directory`]: the signed record of where an account's helper is served;
//! - [`route`]: routes through other banks, and what forwarding and paying check;
//! - [`relay`]: what links one account's banks: an HTLC's fate from what its neighbours did;
//! - [`store`]: crash-safe storage of banks (in memory, or redb on disk);
//! - [`transport`], [`chain`]: how helpers reach each other and the chain, and the
//!   watchtower's decisions;
//! - [`helper`]: one party's helper, tying the core to a store;
//! - [`tower`]: a watchtower for banks of accounts its node does not serve;
//! - [`driver`]: carries a helper's messages to its peer until a step is done;
//! - [`fuzzing`]: the coverage-guided fuzz target's body, also replayed in the tests.

pub mod bank;
pub mod chain;
pub mod directory;
pub mod driver;
pub mod fuzzing;
pub mod helper;
pub mod keys;
pub mod message;
pub mod relay;
pub mod route;
pub mod secrets;
pub mod store;
pub mod tower;
pub mod transport;

pub use bank::{
	Action, Bank, Closing, Error, Htlc, HtlcUpdate, LiquidationSheet, Phase, Progress, Step, Terms,
};
pub use helper::{Helper, HelperError, Policy};
pub use message::{Body, Message};
