"""Which mail a machine sent (RFC 3834): it becomes a ticket, never an automatic reply; pure."""

from __future__ import annotations

from email.message import EmailMessage

from intake_hub.connectors.email.compose import OUTBOUND_HEADER, is_ours

_BULK = frozenset({"bulk", "list", "junk"})
_DAEMONS = ("mailer-daemon", "postmaster")


def _daemon(address: str) -> bool:
    local = address.strip("<>").rpartition("@")[0] or address.strip("<>")
    return not local or local.lower() in _DAEMONS


def automatic(
    msg: EmailMessage,
    *,
    mail_from: str | None,
    from_address: str,
    message_id: str,
    own_domain: str = "",
) -> str | None:
    """Why `msg` is automatic mail (a short reason), or None when a person sent it."""
    submitted = str(msg.get("Auto-Submitted", "")).strip().lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return f"auto-submitted: {submitted}"
    if mail_from is not None and (mail_from in ("", "<>") or _daemon(mail_from)):
        return "empty or daemon envelope sender"
    if _daemon(from_address):
        return "daemon sender"
    if str(msg.get("Precedence", "")).strip().lower() in _BULK:
        return "precedence"
    if any(name.lower().startswith("list-") for name in msg):
        return "list mail"
    if msg.get_content_type() == "multipart/report":
        return "delivery report"
    if OUTBOUND_HEADER in msg:
        return "our own mail"
    if own_domain and is_ours(message_id, own_domain):
        return "our own mail"
    return None
