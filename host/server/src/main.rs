//! postern
fn main() {}
