//! The node's client types, a leaf that the services and the helpers both name (the helpers
//! read the chain through the client and submit through the pool; the services build them).

use sc_executor::WasmExecutor;
use vbank_runtime::{apis::RuntimeApi, opaque::Block};

/// The host functions the runtime may call; a runtime built for benchmarks calls more.
#[cfg(not(feature = "runtime-benchmarks"))]
pub type HostFunctions = sp_io::SubstrateHostFunctions;
#[cfg(feature = "runtime-benchmarks")]
pub type HostFunctions =
	(sp_io::SubstrateHostFunctions, frame_benchmarking::benchmarking::HostFunctions);

pub type FullClient = sc_service::TFullClient<Block, RuntimeApi, WasmExecutor<HostFunctions>>;
pub type FullBackend = sc_service::TFullBackend<Block>;
pub type FullPool = sc_transaction_pool::TransactionPoolHandle<Block, FullClient>;
