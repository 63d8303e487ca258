//! AFL++ target: arbitrary bytes as messages from a bank's peer, handled by an honest helper
//! (`rsmc::fuzzing::peer_messages`). Run it as RELIABILITY.md says.

fn main() {
	afl::fuzz!(|data: &[u8]| {
		rsmc::fuzzing::peer_messages(data);
	});
}
