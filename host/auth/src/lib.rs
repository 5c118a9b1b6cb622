//! Postern's user database: Dovecot passwd-file users, and (later) password schemes and SASL (to be written).
