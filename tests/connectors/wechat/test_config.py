"""The shipped wechat.yaml and its validation: configured from the environment, or skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake_hub.connectors.registry import ConnectorConfigError, load_connectors
from intake_hub.connectors.web.connector import WebConfig
from intake_hub.connectors.wechat.config import WeChatConfig
from tests.conftest import ROOT
from tests.connectors.wechat.conftest import AES_KEY, APP_ID, OLD_AES_KEY, TOKEN


def _shipped(env: dict[str, str]) -> WeChatConfig:
    [config] = [
        c for c in load_connectors(ROOT / "connectors", env=env) if isinstance(c, WeChatConfig)
    ]
    return config


def test_shipped_file_loads_unconfigured_without_variables() -> None:
    """With no WeChat variables the shipped file still loads, as an instance to skip."""
    config = _shipped({})
    assert not config.enabled
    assert config.api_base == "https://api.weixin.qq.com"
    assert config.reply_budget_s == 3


def test_shipped_file_takes_the_account_from_the_environment() -> None:
    """The INTAKE_HUB_WECHAT_* variables configure the shipped account in safe mode."""
    config = _shipped(
        {
            "INTAKE_HUB_WECHAT_TOKEN": TOKEN,
            "INTAKE_HUB_WECHAT_APP_ID": APP_ID,
            "INTAKE_HUB_WECHAT_AES_KEY": AES_KEY,
            "INTAKE_HUB_WECHAT_PREVIOUS_AES_KEY": OLD_AES_KEY,
            "INTAKE_HUB_WECHAT_API_BASE": "http://127.0.0.1:9999",
        }
    )
    assert config.enabled and config.encrypted
    assert config.my_tickets_key == "MY_TICKETS" and "MY_TICKETS" not in config.menu
    assert config.aes_keys == (AES_KEY, OLD_AES_KEY)
    assert config.api_base == "http://127.0.0.1:9999"
    assert TOKEN not in repr(config) and AES_KEY not in repr(config)


def test_default_applies_only_when_the_variable_is_unset_or_empty(tmp_path: Path) -> None:
    """`${VAR:-default}` gives the default for unset or empty variables, else the value."""
    (tmp_path / "shop.yaml").write_text("type: web\nname: ${SHOP:-main}\n")
    assert load_connectors(tmp_path, env={}) == [WebConfig(name="main")]
    assert load_connectors(tmp_path, env={"SHOP": ""}) == [WebConfig(name="main")]
    assert load_connectors(tmp_path, env={"SHOP": "b"}) == [WebConfig(name="b")]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("token: ab\n", "3-32 letters and digits"),
        ("token: abcdef\naes_key: short\napp_id: wx1\n", "43 base64 characters"),
        (f"token: abcdef\naes_key: {AES_KEY}\n", "needs app_id"),
        (f"token: abcdef\nprevious_aes_key: {AES_KEY}\n", "only a fallback"),
        ("token: abcdef\nreply_budget_s: 5\n", "reply_budget_s"),
        ("token: abcdef\nname: Bad/Name\n", "name"),
        ("token: abcdef\nmenu: {MINE: 我的工单}\nmy_tickets_key: MINE\n", "also a menu key"),
    ],
)
def test_mistakes_in_a_wechat_file_are_named(tmp_path: Path, content: str, problem: str) -> None:
    """A wrong token, key, budget or name stops start-up with the file and the reason."""
    (tmp_path / "wechat.yaml").write_text("type: wechat\n" + content)
    with pytest.raises(ConnectorConfigError) as err:
        load_connectors(tmp_path, env={})
    assert str(tmp_path / "wechat.yaml") in str(err.value)
    assert problem in str(err.value)
