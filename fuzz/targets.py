"""The fuzz targets: name -> harness, and how libFuzzer should run it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

FUZZ_DIR: Final = Path(__file__).resolve().parent
CORPUS_DIR: Final = FUZZ_DIR / "corpus"
DICT_DIR: Final = FUZZ_DIR / "dict"
CRASH_DIR: Final = FUZZ_DIR / "crashes"
# New interesting inputs land here (git-ignored) unless `--merge` folds them into the corpus.
WORK_DIR: Final = FUZZ_DIR / ".work"


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    module: str  # under fuzz.harness
    function: str
    what: str
    max_len: int = 4096  # libFuzzer -max_len: big enough for the limits the harness sets
    # Packages besides mailwright whose code the fuzzer should see (coverage feedback).
    instrument: tuple[str, ...] = ()

    @property
    def corpus(self) -> Path:
        return CORPUS_DIR / self.name

    @property
    def dictionary(self) -> Path | None:
        path = DICT_DIR / f"{self.name}.dict"
        return path if path.exists() else None

    def load(self) -> Callable[[bytes], None]:
        module = importlib.import_module(f"fuzz.harness.{self.module}")
        fn: Callable[[bytes], None] = getattr(module, self.function)
        return fn


TARGETS: Final = {t.name: t for t in (
    Target("smtp", "smtp", "fuzz_smtp", "SMTP stream: command lines, DATA, BDAT, AUTH lines"),
    Target("sasl", "sasl", "fuzz_sasl", "SASL PLAIN/LOGIN decoding and exchange", 1024),
    Target("pop3", "pop3", "fuzz_pop3", "POP3 stream: commands and SASL lines", 2048),
    Target("imap", "imap", "fuzz_imap", "IMAP stream: commands, literals, APPEND, IDLE"),
    Target("imap_search", "imap", "fuzz_imap_search", "IMAP SEARCH program and evaluation", 2048),
    Target("mutf7", "imap", "fuzz_mutf7", "modified UTF-7 mailbox names", 512),
    Target("message", "message", "fuzz_message",
           "message at delivery: MIME, ENVELOPE, BODYSTRUCTURE, FETCH", 16384),
    Target("inbound", "mailauth", "fuzz_inbound",
           "inbound header handling: From domain, A-R, DKIM", 8192, ("dkim",)),
    Target("spf", "mailauth", "fuzz_spf", "SPF record and macro parsers", 8192),
    Target("dmarc", "mailauth", "fuzz_dmarc", "DMARC record parser and alignment", 1024),
)}
