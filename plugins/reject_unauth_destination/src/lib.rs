//! reject_unauth_destination (to be written).
