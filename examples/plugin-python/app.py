"""sender_blocklist: a Postern policy plugin in Python.

Rejects MAIL FROM addresses that match a list of patterns, as an access
map would, but with patterns: shell-style globs on the lower-cased
address (``*@spam.example``, ``*@*.spam.example``, ``bounce-*@*``), a
regular expression between slashes (``/^[0-9]+@/``), or ``<>`` for the
null sender. The patterns are the entry's arguments::

    smtpd_sender_restrictions = ["sender_blocklist *@spam.example /^[0-9]+@/"]
    smtpd_sender_restrictions = [
        { plugin = "sender_blocklist", patterns = "*@spam.example", code = "450" },
    ]

Optional arguments: ``code`` (a 4xx or 5xx reply code; default 554, as
Postfix's access_map_reject_code) and ``text`` (default "Access denied").
``init`` checks every argument and names the one that is wrong, so a
mistake stops ``postern check`` and a reload instead of letting mail
through. The reply is Postfix's for a sender access map:
``554 5.7.1 <bad@spam.example>: Sender address rejected: Access denied``.

It is written against the ``plugin`` world of ``wit/policy.wit``; the
``wit_world`` module is what componentize-py generates from it.
"""

import fnmatch
import re
from typing import List, Optional, Tuple

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


class Blocklist:
    """The entry's arguments, checked."""

    def __init__(self, args: List[Tuple[str, str]]) -> None:
        self.patterns: List[Tuple[str, re.Pattern]] = []
        self.code = 554
        self.text = "Access denied"
        for key, value in args:
            if key.isdigit() or key == "patterns":
                for word in value.split():
                    self.patterns.append((word, compile_pattern(word)))
            elif key == "code":
                if not re.fullmatch(r"[45][0-9][0-9]", value.strip()):
                    raise Err(f"code: {value!r}: expected a 4xx or 5xx reply code")
                self.code = int(value)
            elif key == "text":
                if "\r" in value or "\n" in value or not value.strip():
                    raise Err("text: must be one non-empty line")
                self.text = value.strip()
            else:
                raise Err(f"{key}: unknown argument (expected patterns, code or text)")
        if not self.patterns:
            raise Err("patterns: missing argument (such as *@spam.example)")

    def match(self, sender: str) -> Optional[str]:
        """The first pattern that matches ``sender``, if any."""
        address = sender.lower() if sender else "<>"
        for source, pattern in self.patterns:
            if pattern.search(address):
                return source
        return None


def compile_pattern(word: str) -> re.Pattern:
    """A glob, a /regex/ or <>, as a compiled regular expression."""
    if len(word) > 1 and word.startswith("/") and word.endswith("/"):
        try:
            return re.compile(word[1:-1], re.IGNORECASE)
        except re.error as e:
            raise Err(f"pattern {word!r}: {e}")
    if word == "<>":
        return re.compile(r"\A<>\Z")
    if "@" not in word:
        raise Err(f"pattern {word!r}: expected user@domain with wildcards, /regex/ or <>")
    return re.compile(fnmatch.translate(word.lower()))


# The entry of this instance: the host runs init once per instance.
BLOCKLIST: Optional[Blocklist] = None


class WitWorld(wit_world.WitWorld):
    def init(self, args: List[Tuple[str, str]]) -> None:
        global BLOCKLIST
        BLOCKLIST = Blocklist(args)
        # Nothing here belongs to one transaction: an instance (with its
        # interpreter, the costly part) may serve many in turn.
        host.reuse_instances()

    def check(self, req: types.Request) -> types.Verdict:
        # The sender is known from MAIL FROM on (and at the sender, relay,
        # recipient, data and end-of-data stages).
        if BLOCKLIST is None or req.stage in (types.Stage.CLIENT, types.Stage.HELO):
            return types.Verdict_Dunno()
        pattern = BLOCKLIST.match(req.sender)
        if pattern is None:
            return types.Verdict_Dunno()
        host.log(host.LogLevel.INFO, f"sender <{req.sender}> matches {pattern}")
        enhanced = "5.7.1" if BLOCKLIST.code >= 500 else "4.7.1"
        text = f"<{req.sender}>: Sender address rejected: {BLOCKLIST.text}"
        return types.Verdict_Reject(types.Reply(BLOCKLIST.code, enhanced, text))
