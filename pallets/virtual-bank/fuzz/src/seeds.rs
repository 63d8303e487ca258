//! Writes the fuzzer's starting inputs into the directory given (default `corpus`).

fn main() {
	let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
	std::fs::create_dir_all(&dir).expect("a corpus directory");
	for (i, input) in pallet_virtual_bank::fuzzing::seed_inputs().iter().enumerate() {
		std::fs::write(format!("{dir}/seed-{i}"), input).expect("a seed file");
	}
}
