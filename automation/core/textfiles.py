"""The user's own text files (the config, the tasks file) decoded as UTF-8, or one line saying why not.

Editors on Windows save UTF-16 or a legacy code page; the message names the encoding problem and
where it is, so the file can be re-saved, instead of a codec's exception text. File names get the
same care: a repository may hold a name in a legacy code page or with a newline in it.
"""

from __future__ import annotations

import re

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# what a path written into a prompt, a map or a message may not hold: a lone surrogate (os.fsdecode's
# stand-in for a byte that is not UTF-8, which no UTF-8 output can encode) or a control character or
# line separator (a newline, U+0085 or U+2028 in a name would start a line of its own in the repository map)
_UNWRITABLE = re.compile(r"[\ud800-\udfff\x00-\x1f\x7f-\x9f\u2028\u2029]")


def writable_path(path: str) -> bool:
    """Whether ``path`` (as ``os.fsdecode`` gives it) can be written into UTF-8 text as it is, on one line."""
    return _UNWRITABLE.search(path) is None


def decode_utf8(data: bytes, what: str) -> str:
    """``data`` as text (a UTF-8 BOM is kept: YAML and Markdown parsers skip it).

    Raises ValueError("the {what} is UTF-16; …") or ValueError("the {what} is not UTF-8 text
    (line N, byte B); …"), to be prefixed with the file's path by the caller.
    """
    if data.startswith(UTF16_BOMS):
        raise ValueError(f"the {what} is UTF-16; save it as UTF-8 (most editors: 'Save with encoding')")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"the {what} is not UTF-8 text (line {line}, byte {error.start}); save it as UTF-8") from None
