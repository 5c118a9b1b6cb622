//! permit_mynetworks (to be written).
