//! Postern's delivery agents: local (Maildir) now, mbox, aliases, pipe and remote SMTP later (to be written).
