//! Postern's policy runtime: restriction chains of sandboxed WebAssembly components (to be written).
