//! Postern's mailbox store: Maildir delivery and (later) UIDs, flags and folders (to be written).
