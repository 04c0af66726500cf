"""One harness module per protocol; see fuzz/__init__.py."""
