"""WeChat's server API: access token (cached, refreshed early and on 40001/42001),
the customer-service message API and media download.

Error codes follow the published contract: https://developers.weixin.qq.com/doc/offiaccount/
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass

import aiohttp

from connectors.base import PermanentSendError, TransientSendError, WindowClosedError

log = logging.getLogger(__name__)

TOKEN_INVALID = {40001, 40014, 42001}        # invalid / malformed / expired access token: refresh once
WINDOW_CLOSED = {45015, 45047, 43004}        # outside 48 h, too many replies, customer unsubscribed
TRANSIENT = {-1, 45009, 45011}               # system busy, rate limits
BAD_CREDENTIALS = {40013, 40125, 41002, 41004}  # wrong app id / secret: will not heal by retrying
REFRESH_MARGIN = 300.0                        # refresh this many seconds before expiry


class WechatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"WeChat errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str
    filename: str | None


class WechatApi:
    def __init__(self, appid: str, secret: str, base_url: str, *, timeout: float = 10.0,
                 clock=time.monotonic):
        self.appid = appid
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.token_fetches = 0   # observability: how often we asked for a token

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- token ------------------------------------------------------------------------------
    async def access_token(self, *, stale: str | None = None) -> str:
        """A valid token; `stale` is the token WeChat just rejected (refresh unless another task already did)."""
        async with self._lock:
            if self._token and self._token != stale and self._clock() < self._expires:
                return self._token
            session = await self.session()
            try:
                async with session.get(f"{self.base_url}/cgi-bin/token", params={
                        "grant_type": "client_credential", "appid": self.appid, "secret": self._secret}) as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                raise TransientSendError(f"WeChat token request failed: {exc!r}") from exc
            self.token_fetches += 1
            if not isinstance(body, dict) or not body.get("access_token"):
                code = int(body.get("errcode", -1)) if isinstance(body, dict) else -1
                msg = body.get("errmsg", "") if isinstance(body, dict) else str(body)[:200]
                err = PermanentSendError if code in BAD_CREDENTIALS else TransientSendError
                raise err(f"WeChat token request refused: errcode {code}: {msg}")
            lifetime = float(body.get("expires_in") or 7200)
            self._token = str(body["access_token"])
            self._expires = self._clock() + max(lifetime - REFRESH_MARGIN, lifetime / 2)
            return self._token

    def forget_token(self) -> None:
        self._token = None

    async def _call(self, method: str, path: str, *, json_body: dict | None = None, params: dict | None = None,
                    raw: bool = False):
        """One API call with a token; on 40001/42001 refresh the token and try once more."""
        token = await self.access_token()
        for attempt in (1, 2):
            session = await self.session()
            data = None
            if json_body is not None:   # UTF-8 as is: WeChat shows \\uXXXX escapes literally on some APIs
                data = json.dumps(json_body, ensure_ascii=False).encode()
            try:
                async with session.request(method, f"{self.base_url}{path}",
                                           params={**(params or {}), "access_token": token}, data=data,
                                           headers={"Content-Type": "application/json; charset=utf-8"}
                                           if data else None) as resp:
                    if resp.status >= 500 or resp.status == 429:
                        raise TransientSendError(f"WeChat {path}: HTTP {resp.status}")
                    ctype = resp.headers.get("Content-Type", "")
                    content = await resp.read()
                    if raw and not ctype.startswith(("application/json", "text/plain")):
                        return Media(content, ctype.split(";")[0].strip() or "application/octet-stream",
                                     _filename(resp.headers.get("Content-Disposition", "")))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise TransientSendError(f"WeChat {path}: {exc!r}") from exc
            try:
                body = json.loads(content)
            except ValueError:
                raise TransientSendError(f"WeChat {path}: answer is not JSON") from None
            code = int(body.get("errcode", 0)) if isinstance(body, dict) else -1
            if code in TOKEN_INVALID and attempt == 1:
                log.info("WeChat rejected the access token (errcode %s); refreshing", code)
                token = await self.access_token(stale=token)
                continue
            if code != 0:
                raise WechatApiError(code, str(body.get("errmsg", "")) if isinstance(body, dict) else "")
            return body
        raise AssertionError("unreachable")

    # -- customer-service messages ------------------------------------------------------------
    async def send_text(self, openid: str, content: str) -> dict:
        """Send a customer-service text; raises the contract's send errors."""
        try:
            return await self._call("POST", "/cgi-bin/message/custom/send", json_body={
                "touser": openid, "msgtype": "text", "text": {"content": content}})
        except WechatApiError as exc:
            raise classify(exc) from exc

    async def get_media(self, media_id: str) -> Media:
        """Download a temporary media file (kept by WeChat for 3 days)."""
        result = await self._call("GET", "/cgi-bin/media/get", params={"media_id": media_id}, raw=True)
        if isinstance(result, Media):
            return result
        video_url = result.get("video_url") if isinstance(result, dict) else None
        raise WechatApiError(-2, f"media is a link, not a file: {video_url}" if video_url else "no file in answer")


def classify(exc: WechatApiError) -> Exception:
    if exc.errcode in WINDOW_CLOSED:
        return WindowClosedError(str(exc))
    if exc.errcode in TRANSIENT or exc.errcode in TOKEN_INVALID:
        return TransientSendError(str(exc))
    return PermanentSendError(str(exc))


def _filename(disposition: str) -> str | None:
    m = re.search(r'filename="?([^";]+)"?', disposition)
    return m.group(1) if m else None
