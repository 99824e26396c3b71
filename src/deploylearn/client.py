"""A client of ``ign serve``: the five questions asked over HTTP, answered as the same typed
models the facade returns (``domain/answers``), so ``ign deploy … --server URL`` renders a
served answer with the code that renders a local one.

Only httpx and the answer models: no web framework, no store, no model loading, so asking a
remote service costs a client none of the learner's imports. The methods take the facade's
argument names (``DeploymentPatternLearner.recommend`` …); the service's status codes become
this package's errors, which the command line maps to its exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from deploylearn.domain.answers.adaptations import Adaptations
from deploylearn.domain.answers.analytics import DeploymentAnalytics
from deploylearn.domain.answers.prediction import PredictionAnswer
from deploylearn.domain.answers.recommendations import Recommendations
from deploylearn.domain.answers.rollbacks import RollbackScenarios
from deploylearn.errors import (
    InvalidServerUrlError,
    ServerError,
    ServerRefusedError,
    ServerUnavailableError,
)
from deploylearn.version import __version__

M = TypeVar("M", bound=BaseModel)

# The first answer after a write folds the whole history on the server: seconds on a large
# store, so reads get minutes; a server that does not accept the connection fails fast.
READ_TIMEOUT = 120.0
CONNECT_TIMEOUT = 10.0
TOKEN_HINT = "DEPLOYLEARN_TOKEN or --token"


def server_url(url: str, option: str = "server URL") -> str:
    """``url`` as the service's base URL: http(s), a host, no query; a trailing ``/`` or
    ``/v1`` (as ``ign serve`` prints it) is dropped. ``option`` names it in the error."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidServerUrlError(
            f"{option}: {url!r} is not an http(s) URL of a service "
            "(e.g. http://127.0.0.1:8765, as ign serve prints it)"
        )
    if parts.query or parts.fragment:
        raise InvalidServerUrlError(f"{option}: {url!r}: give the service's URL without ? or #")
    try:
        parts.port  # noqa: B018  # raises on a port that is not a number or out of range
    except ValueError:
        raise InvalidServerUrlError(f"{option}: {url!r}: the port is not valid") from None
    base = url.strip().rstrip("/")
    return base.removesuffix("/v1").rstrip("/")


class ServiceClient:
    """The questions of ``DeploymentPatternLearner``, asked of the service at ``url`` with a
    bearer ``token`` (``read`` scope). Use it as a context manager (one connection pool)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        read_timeout: float = READ_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.url = server_url(url)
        self._token_given = bool(token)
        headers = {"User-Agent": f"deploylearn/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = read_timeout
        self._http = httpx.Client(
            base_url=f"{self.url}/v1",
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,  # a redirect elsewhere must not carry the token
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the questions ---------------------------------------------------------------------
    def recommend(
        self,
        target_environment: str,
        resource_types: list[str],
        deployment_strategy: str | None = None,
        gateway_host: str | None = None,
        limit: int = 5,
    ) -> Recommendations:
        """``GET /v1/recommendations``."""
        params = _params(
            target_environment=target_environment,
            resource_types=resource_types,
            deployment_strategy=deployment_strategy,
            gateway_host=gateway_host,
            limit=limit,
        )
        return self._ask("GET", "/recommendations", Recommendations, params=params)

    def predict(
        self,
        planned: dict[str, Any] | Iterable[dict[str, Any]],
        fail_below: float | None = None,
        *,
        allow_unknown: bool = False,
    ) -> PredictionAnswer:
        """``POST /v1/predict``; with ``fail_below`` the answer carries the service's gate."""
        body: dict[str, Any] = {
            "planned": planned if isinstance(planned, dict) else list(planned),
            "allow_unknown": allow_unknown,
        }
        if fail_below is not None:
            body["fail_below"] = fail_below
        answer = self._ask("POST", "/predict", PredictionAnswer, json=body)
        if fail_below is not None and answer.gate is None:
            raise ServerError(f"the server at {self.url} answered predict without the gate")
        return answer

    def adaptations(
        self,
        source_environment: str,
        target_environment: str,
        resource_type: str | None = None,
        limit: int = 3,
    ) -> Adaptations:
        """``GET /v1/adaptations``."""
        params = _params(
            source_environment=source_environment,
            target_environment=target_environment,
            resource_type=resource_type,
            limit=limit,
        )
        return self._ask("GET", "/adaptations", Adaptations, params=params)

    def rollback_scenarios(
        self, environment: str, resource_types: list[str] | None = None, limit: int = 3
    ) -> RollbackScenarios:
        """``GET /v1/rollback-scenarios``."""
        params = _params(environment=environment, resource_types=resource_types, limit=limit)
        return self._ask("GET", "/rollback-scenarios", RollbackScenarios, params=params)

    def analytics(
        self,
        environment: str | None = None,
        days_back: int = 30,
        metric_types: list[str] | None = None,
    ) -> DeploymentAnalytics:
        """``GET /v1/analytics``."""
        params = _params(environment=environment, days_back=days_back, metric_types=metric_types)
        return self._ask("GET", "/analytics", DeploymentAnalytics, params=params)

    # -- the exchange ----------------------------------------------------------------------
    def _ask(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        params: httpx.QueryParams | None = None,
        json: Any = None,
    ) -> M:
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException:
            raise ServerUnavailableError(
                f"the server at {self.url} did not answer {path} within {self._timeout:g} s"
            ) from None
        except httpx.ConnectError as exc:
            raise ServerUnavailableError(
                f"the server is not reachable at {self.url}: {exc}"
            ) from None
        except httpx.TransportError as exc:
            raise ServerUnavailableError(
                f"the server at {self.url} broke off {path}: {exc or type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise self._refusal(response, path)
        try:
            body = response.json()
        except ValueError:
            raise ServerError(
                f"the server at {self.url} answered {path} with something that is not JSON: "
                "is it an ign serve?"
            ) from None
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first["loc"]) or "the answer"
            raise ServerError(
                f"the server at {self.url} answered {path} with something that is not a "
                f"{model.__name__} ({where}: {first['msg']}): another deploylearn version?"
            ) from None

    def _refusal(self, response: httpx.Response, path: str) -> Exception:
        """The error for a non-200 answer, in the words the service used."""
        status, said = response.status_code, _said(response)
        if status == 401:
            if not self._token_given:
                return ServerRefusedError(
                    f"the server at {self.url} needs a token: the token is missing (set "
                    f"{TOKEN_HINT} to one from `ign token create NAME --scope read`)"
                )
            return ServerRefusedError(
                f"the server at {self.url} refused the token as invalid ({said}): "
                f"check {TOKEN_HINT}"
            )
        if status == 403:
            return ServerRefusedError(
                f"the server at {self.url} refused the token: it lacks the scope ({said})"
            )
        if status == 503:
            return ServerUnavailableError(f"the server at {self.url} is unavailable: {said}")
        if 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
            return ServerError(
                f"the server at {self.url} redirects {path} to {where}: give that URL instead"
            )
        if 400 <= status < 500:
            return ServerRefusedError(said)
        return ServerError(f"the server at {self.url} failed on {path} ({status}): {said}")


def _params(**values: str | int | list[str] | None) -> httpx.QueryParams:
    """Query parameters, a list repeated (the service also splits on commas), None left out."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in values.items():
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        pairs.extend((name, str(item)) for item in items)
    return httpx.QueryParams(pairs)


def _said(response: httpx.Response) -> str:
    """What the service said: our ``{"error": …}``, FastAPI's ``{"detail": …}`` (a text, or
    validation errors naming the field by ``loc``), or the body's text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, Mapping):
        if isinstance(body.get("error"), str):
            return str(body["error"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            return "; ".join(_validation_problem(item) for item in detail)
    return response.text.strip()[:300]


def _validation_problem(item: Any) -> str:
    """``limit: Input should be …`` from one of FastAPI's validation errors."""
    if not isinstance(item, Mapping):
        return str(item)
    loc = [str(p) for p in item.get("loc", []) if p not in ("query", "body", "path", "header")]
    message = str(item.get("msg", "invalid"))
    return f"{'.'.join(loc)}: {message}" if loc else message
