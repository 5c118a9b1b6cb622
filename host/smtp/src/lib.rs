//! Postern's SMTP protocol: a sans-IO codec, the server session, and (later) the outbound client (to be written).
