"""Quoted history and signatures trimmed from a mail's text; pure.

Agents read what the customer wrote this time; the whole mail stays in `original.eml`.

A forward is not history: a customer forwarding an order confirmation usually writes a
line ("see below") and the forwarded mail IS what the agent needs (order number, items,
the shop's words). So a forwarded block is kept, always, whatever the customer wrote:
its marker, its From/Date/Subject/To lines and its text, that text trimmed of its own
history and signature. A forward is recognised by its marker (Gmail's "Forwarded
message", Apple Mail's "Begin forwarded message:", 转发邮件) or, for clients that mark a
forward like a reply (Outlook's "Original Message", Foxmail's 原始邮件), by the caller
saying so from the subject (`Fwd:`, `FW:`, `转发:`).
"""

from __future__ import annotations

import re

# A line that starts the quoted history: everything from it on is history.
_CUT = re.compile(
    r"^(?:"
    r"-{2,}\s*(?:Original Message|Forwarded message|原始邮件|转发邮件)\s*-{2,}"
    r"|Begin forwarded message:"
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
# What mail apps append on their own ("Sent from my iPhone", 发自我的华为手机, 来自网易邮箱大师):
# dropped when it ends the text, never when the customer wrote more after it.
_DEVICE = re.compile(
    r"^(?:(?:sent from|get outlook for)\s.{1,60}"
    r"|(?:发自|来自|从)\s*(?:我的)?\s*\S{0,20}?"
    r"(?:iPhone|iPad|Android|手机|邮箱|邮箱大师|Outlook|Windows\s*版邮件|移动设备)(?:\s*发送)?)$",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:Forwarded message|转发邮件)\s*-{2,}|Begin forwarded message:)\s*$",
    re.IGNORECASE,
)
# A subject that says the mail is a forward.
FORWARD_SUBJECT = re.compile(r"^\s*(?:(?:re|aw|回复)\s*[:：]\s*)*(?:fwd?|转发)\s*[:：]", re.I)


def _plain(line: str) -> str:
    """A line stripped, its no-break spaces (`&nbsp;` or U+00A0) read as spaces."""
    # Foxmail's and QQ Mail's plain text carries a literal `&nbsp;` around 原始邮件.
    return line.replace("&nbsp;", " ").replace("\xa0", " ").strip()


def _starts_history(lines: list[str], i: int) -> bool:
    line = _plain(lines[i])
    if _CUT.match(line) or _ON.match(line):
        return True
    wrapped = i + 1 < len(lines) and line.lower().startswith("on ")
    if wrapped and _ON.match(f"{line} {_plain(lines[i + 1])}"):
        return True
    if _FROM.match(line):
        return any(_BLOCK_FIELD.match(_plain(n)) for n in lines[i + 1 : i + 5])
    return False


def _history_from(lines: list[str], start: int) -> int | None:
    """Where the history begins at or after `start`, or None."""
    return next((i for i in range(start, len(lines)) if _starts_history(lines, i)), None)


def _field_follows(lines: list[str], i: int) -> bool:
    """Whether the line after the blank `lines[i]` is a header field of a quoted block."""
    return i + 1 < len(lines) and _BLOCK_FIELD.match(_plain(lines[i + 1])) is not None


def _forwarded(lines: list[str]) -> list[str]:
    """A forwarded block kept: its marker, its header lines, its text trimmed."""
    i = 1
    while i < len(lines) and not lines[i].strip():
        i += 1  # Apple Mail leaves a blank line after its marker
    head = [" ".join(_plain(lines[0]).split())]
    while i < len(lines):
        line = _plain(lines[i])
        if line and (_FROM.match(line) or _BLOCK_FIELD.match(line)):
            head.append(" ".join(line.split()))
        elif line or not _field_follows(lines, i):
            break  # Foxmail leaves a blank line inside its field block: skip only that
        i += 1
    body = trim("\n".join(lines[i:]))
    return [*head, "", body] if body else head


def trim(text: str, *, forwarded: bool = False) -> str:
    """`text` without quoted history (`>` lines, attributions), signature and the mail
    app's own last line ("Sent from my iPhone").

    A forwarded block stays (see above); `forwarded`: the subject says the mail is a
    forward, so its first history block is the forwarded mail. When nothing would be
    left (a mail that is all quote), the text is kept whole.
    """
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        history = _starts_history(lines, i)
        if line in _SIGNATURE or history:
            start = i if history else _history_from(lines, i + 1)
            if start is not None and (forwarded or _FORWARD.match(_plain(lines[start]))):
                kept += ["", *_forwarded(lines[start:])]
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    while kept and (not kept[-1].strip() or _DEVICE.match(_plain(kept[-1]))):
        kept.pop()
    result = "\n".join(kept).strip()
    result = re.sub(r"\n{3,}", "\n\n", result)
    return result or text.strip()
