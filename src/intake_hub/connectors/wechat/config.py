"""`connectors/wechat.yaml`: one official account, validated; no I/O."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import Field, PositiveFloat, field_validator, model_validator

from intake_hub.connectors.base import ConnectorConfig

WECHAT_DEADLINE_S = 5.0


def _aes_key_ok(value: str) -> bool:
    if len(value) != 43:
        return False
    try:
        return len(base64.b64decode(value + "=", validate=True)) == 32
    except binascii.Error:
        return False


class WeChatConfig(ConnectorConfig):
    """One official account: its token, safe-mode keys, reply budget and fixed answers.

    An empty `token` means the account is not configured: the app skips the instance,
    so the shipped file can reference unset variables and `serve` still starts.
    """

    type: Literal["wechat"] = "wechat"
    name: str = Field(default="wechat", pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    token: str = Field(default="", repr=False)
    app_id: str = ""
    app_secret: str = Field(default="", repr=False)
    aes_key: str = Field(default="", repr=False)
    previous_aes_key: str = Field(default="", repr=False)
    api_base: str = "https://api.weixin.qq.com"
    reply_budget_s: float = Field(default=3.0, gt=0, lt=WECHAT_DEADLINE_S)
    welcome: str = ""
    menu: dict[str, str] = Field(default_factory=dict)
    # The CLICK key answered with the customer's open tickets ("" = no such button).
    my_tickets_key: str = Field(default="", max_length=128)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    outbound_poll_s: float = Field(default=1.0, gt=0, le=60)
    # A request whose signed timestamp is further than this from our clock is refused: a
    # captured URL stops working after it (docs/connectors/wechat.md, replay).
    max_clock_skew_s: int = Field(default=300, ge=30, le=3600)
    # Customers' images, voice and video, fetched after the passive reply (media.py).
    media_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    media_timeout_s: float = Field(default=30.0, gt=0, le=300)
    media_poll_s: float = Field(default=1.0, gt=0, le=60)
    # Waits after the 1st, 2nd ... failed fetch (the last repeats), each with +-20% jitter.
    media_retry_s: tuple[PositiveFloat, ...] = Field(default=(5, 30, 120, 600, 3600), min_length=1)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        # WeChat's own settings page only accepts 3-32 letters and digits.
        if value and not (3 <= len(value) <= 32 and value.isascii() and value.isalnum()):
            raise ValueError("a WeChat token is 3-32 letters and digits")
        return value

    @field_validator("aes_key", "previous_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if value and not _aes_key_ok(value):
            raise ValueError("an EncodingAESKey is 43 base64 characters")
        return value

    @model_validator(mode="after")
    def _safe_mode_needs_app_id(self) -> WeChatConfig:
        if self.token and self.aes_key and not self.app_id:
            raise ValueError("safe mode (aes_key) needs app_id: decrypted messages are checked")
        if self.previous_aes_key and not self.aes_key:
            raise ValueError("previous_aes_key is only a fallback beside aes_key")
        if self.my_tickets_key and self.my_tickets_key in self.menu:
            raise ValueError(f"my_tickets_key {self.my_tickets_key!r} is also a menu key")
        return self

    @property
    def enabled(self) -> bool:
        """Whether this instance has a token, i.e. should be mounted."""
        return bool(self.token)

    @property
    def can_send(self) -> bool:
        """Whether the account has the app id and secret the customer-service API needs."""
        return bool(self.app_id and self.app_secret)

    @property
    def encrypted(self) -> bool:
        """Whether the account runs in safe (AES) mode: plaintext pushes are then refused."""
        return bool(self.aes_key)

    @property
    def aes_keys(self) -> tuple[str, ...]:
        """The keys to try, current first, then the one from before the last rotation."""
        return tuple(k for k in (self.aes_key, self.previous_aes_key) if k)
