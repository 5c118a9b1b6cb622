//! Postern's durable mail queue: cleanup, spool files, recovery and the delivery scheduler (to be written).
