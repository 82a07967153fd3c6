"""A real `serve` keeping attachments in S3 (moto's server standing in for the cloud)."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.attachments.test_s3 import keys, make_bucket, start_server
from tests.conftest import ADMIN_TOKEN
from tests.served.conftest import start_service
from tests.web.test_attachments import Form, photo

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers, resp.read()


def test_a_photo_sent_to_a_service_on_s3_is_kept_in_the_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photo lands under the bucket's prefix, nothing on local disk, and the agent gets it."""
    server, endpoint = start_server()
    try:
        aws = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }
        for name, value in aws.items():
            monkeypatch.setenv(name, value)
        bucket = make_bucket(endpoint)
        home = tmp_path / "home"
        home.mkdir()
        served = start_service(
            home, INTAKE_HUB_ATTACHMENTS_URL=f"s3://{bucket}/shop-a/files", **aws
        )
        try:
            post = Form([("破损.jpg", photo())])
            status, _, body = _call(f"{served.url}/api/v1/web/messages", post.body, post.headers)
            assert status == 202
            number = json.loads(body)["ticket"]
            item = _wait_listed(served.url, number)
            status, headers, data = _call(served.url + item["url"], headers=AUTH)
            assert status == 200 and headers["Content-Type"] == "image/jpeg"
            assert Image.open(io.BytesIO(data)).size == (640, 480)
            stored = keys(endpoint, bucket)
            assert len(stored) == 1 and stored[0].startswith("shop-a/files/")
            assert not (home / "attachments").exists()
        finally:
            served.stop()
    finally:
        server.stop()


def _wait_listed(url: str, number: str) -> dict[str, Any]:
    """The ticket's first attachment once the ticket is stored."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _, _, body = _call(f"{url}/api/v1/tickets/{number}", headers=AUTH)
        except urllib.error.HTTPError:
            time.sleep(0.1)
            continue
        files: list[dict[str, Any]] = json.loads(body)["messages"][0]["attachments"]
        return files[0]
    raise AssertionError(f"ticket {number} was not stored")
