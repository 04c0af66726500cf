"""mailwright: one-process SMTP + POP3 + IMAP server over one durable store."""
__version__ = "0.1.0"
