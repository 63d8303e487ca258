//! AFL++ target: arbitrary bytes as a sequence of calls by a handful of accounts on the mock
//! runtime (`pallet_virtual_bank::fuzzing::calls`). Run it as RELIABILITY.md says.

fn main() {
	afl::fuzz!(|data: &[u8]| {
		pallet_virtual_bank::fuzzing::calls(data);
	});
}
