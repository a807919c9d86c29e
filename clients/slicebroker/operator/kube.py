"""A thin JSON client of the Kubernetes API over the official client's connection handling.

The official `kubernetes` package does the hard parts (kubeconfig and in-cluster loading, TLS,
tokens, connection pools); objects stay plain JSON dicts here, because the operator edits pod
specs field by field under KEP-3838's rules and must send back exactly what it read plus its own
additions, with no model round-trip dropping unknown fields. Watches are read line by line with
the resourceVersion bookkeeping (410 Gone → re-list) done by the caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from kubernetes import client as k8s
from kubernetes import config as k8s_config

log = logging.getLogger(__name__)

JSON = dict[str, Any]
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class KubeError(Exception):
    def __init__(self, status: int, body: str, method: str, path: str) -> None:
        try:
            parsed = json.loads(body)
            message = str(parsed.get("message", body)) if isinstance(parsed, dict) else body
            self.reason = str(parsed.get("reason", "")) if isinstance(parsed, dict) else ""
        except ValueError:
            message, self.reason = body, ""
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status
        self.message = message


class Gone(KubeError):
    """410: the watch's resourceVersion is too old; list again."""


def load_api_client(kubeconfig: str = "", pool_size: int = 8) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = pool_size
    return k8s.ApiClient(configuration)


class Kube:
    def __init__(self, api_client: k8s.ApiClient, request_timeout: float = 30.0) -> None:
        self._api = api_client
        self._timeout = request_timeout

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
        _, url, headers, body, _ = self._api.param_serialize(
            method,
            path,
            query_params=query_params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self._api.call_api(
            method, url, header_params=headers, body=body, _request_timeout=timeout or self._timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        response = self._send(method, path, body, query, content_type)
        data = response.read()
        text = data.decode() if isinstance(data, bytes) else str(data or "")
        if response.status >= 300:
            cls = Gone if response.status == 410 else KubeError
            raise cls(response.status, text, method, path)
        return json.loads(text) if text else {}

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> JSON | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return self.request("GET", path, query=query)
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    def list_all(self, path: str, query: Mapping[str, Any] | None = None) -> tuple[list[JSON], str]:
        """Every item of a collection (paged by 500) and the list's resourceVersion to watch from."""
        items: list[JSON] = []
        token: str | None = None
        while True:
            page = self.request("GET", path, query={**(query or {}), "limit": 500, "continue": token})
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items, str((page.get("metadata") or {}).get("resourceVersion", ""))

    def watch(self, path: str, resource_version: str, timeout_s: int) -> Iterator[tuple[str, JSON]]:
        """Events of one watch request (ends after `timeout_s`); raises `Gone` on 410."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_s,
        }
        response = self._send("GET", path, query=query, timeout=(10.0, timeout_s + 10.0))
        if response.status >= 300:
            raise KubeError(response.status, response.read().decode(), "WATCH", path)
        raw = response.response
        try:
            buffer = b""
            for chunk in raw.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = str(event.get("type", "")), event.get("object") or {}
                    if kind == "ERROR":
                        status = int(obj.get("code", 500))
                        cls = Gone if status == 410 else KubeError
                        raise cls(status, json.dumps(obj), "WATCH", path)
                    yield kind, obj
        finally:
            raw.release_conn()


def query_string(params: Mapping[str, str]) -> str:
    return urlencode(params)
