"""Attachments: a content-addressed store (disk or S3) and the checks an upload passes first."""

from intake_hub.attachments.checks import Checked, check
from intake_hub.attachments.images import thumbnail
from intake_hub.attachments.names import safe_name
from intake_hub.attachments.refused import Refused
from intake_hub.attachments.store import (
    AttachmentStore,
    FileStore,
    MissingAttachment,
    StoreUnavailable,
    open_store,
)

__all__ = [
    "AttachmentStore",
    "Checked",
    "FileStore",
    "MissingAttachment",
    "Refused",
    "StoreUnavailable",
    "check",
    "open_store",
    "safe_name",
    "thumbnail",
]
