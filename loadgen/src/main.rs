fn main() { println!("loadgen: not yet implemented (see issue 4)"); }
