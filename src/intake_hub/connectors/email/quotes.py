"""Quoted history and signatures trimmed from a mail's text; pure.

Agents read what the customer wrote this time; the whole mail stays in `original.eml`.
"""

from __future__ import annotations

import re

# A line that starts the quoted history: everything from it on is history.
_CUT = re.compile(
    r"^(?:"
    r"-{2,}\s*(?:Original Message|Forwarded message|原始邮件|转发邮件)\s*-{2,}"
    r"|_{5,}"
    r"|在.{4,200}写道[:：]"
    r"|.{4,200}\s于\s.{4,200}写道[:：]"
    r")\s*$",
    re.IGNORECASE,
)
# `On <date>, <who> wrote:`, which some clients wrap over two lines.
_ON = re.compile(r"^On\s.{4,300}\swrote:\s*$", re.IGNORECASE)
# Outlook's and Foxmail's header block: `From:`/`发件人:` followed by `Sent:`/`发送时间:` ...
_FROM = re.compile(r"^\*?(?:From|发件人)\s*\*?\s*[:：]", re.IGNORECASE)
_BLOCK_FIELD = re.compile(
    r"^\*?(?:Sent|Date|To|Cc|Subject|发送时间|日期|时间|收件人|抄送|主题)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_SIGNATURE = ("-- ", "--")


def _starts_history(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    if _CUT.match(line) or _ON.match(line):
        return True
    wrapped = i + 1 < len(lines) and line.lower().startswith("on ")
    if wrapped and _ON.match(f"{line} {lines[i + 1].strip()}"):
        return True
    if _FROM.match(line):
        return any(_BLOCK_FIELD.match(n.strip()) for n in lines[i + 1 : i + 5])
    return False


def trim(text: str) -> str:
    """`text` without quoted history (`>` lines, attributions) and signature.

    When nothing would be left (a mail that is all quote), the text is kept whole.
    """
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line in _SIGNATURE or _starts_history(lines, i):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    result = "\n".join(kept).strip()
    result = re.sub(r"\n{3,}", "\n\n", result)
    return result or text.strip()
