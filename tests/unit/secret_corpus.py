"""A corpus of the shapes secrets come in, each carrying its own canary value.

Every shape puts one unique canary into an execution (keys, nesting, lists, URLs, connection
strings, free text in every text field). Tests then look for the canaries, case-insensitively
(templates lower-case their values), everywhere deploylearn writes or prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.conftest import make_record

VISIBLE = "plainvisible"  # a non-secret knob value: must show up where the canaries must not


@dataclass(frozen=True)
class Shape:
    name: str
    build: Callable[[str], dict[str, Any]]  # canary → record fields ("config": merged in)
    field: str  # where the canary must come back for the key holder


def _config(make: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    return lambda s: {"config": make(s)}


SHAPES: list[Shape] = [
    # -- secret keys, flat -------------------------------------------------------------------
    *(
        Shape(f"key {key}", _config(lambda s, key=key: {key: s}), "configuration_used")
        for key in (
            "password",
            "db_password",
            "dbPassword",
            "db_pass",
            "pass",
            "auth",
            "userPassword1",
            "smtp.pass",
            "api_token",
            "apiKey",
            "client-secret",
            "encryption_key",
            "private_key",
            "Authorization",
            "session_cookie",
            "jwt",
            "passphrase",
            "PWD",
            "dbpassword",
            "aws_secret_access_key",
            "x-api-key",
            "refresh_tokens",
        )
    ),
    Shape("numeric secret", _config(lambda s: {"db_password": int(s)}), "configuration_used"),
    # -- nesting and lists -------------------------------------------------------------------
    Shape("nested key", _config(lambda s: {"db": {"password": s}}), "configuration_used"),
    Shape(
        "credentials object",
        _config(lambda s: {"credentials": {"user": "a", "value": s}}),
        "configuration_used",
    ),
    Shape(
        "deep nesting",
        _config(lambda s: {"a": {"b": {"c": {"d": {"token": s}}}}}),
        "configuration_used",
    ),
    Shape(
        "list of objects",
        _config(lambda s: {"servers": [{"host": "h1"}, {"host": "h2", "password": s}]}),
        "configuration_used",
    ),
    Shape(
        "lists in lists",
        _config(lambda s: {"groups": [[{"name": "x", "secret": s}]]}),
        "configuration_used",
    ),
    Shape("passwords list", _config(lambda s: {"passwords": ["old", s]}), "configuration_used"),
    Shape(
        "auth subtree",
        _config(lambda s: {"auth": {"basic": {"user": "u", "value": s}}}),
        "configuration_used",
    ),
    Shape(
        "dotted secret in object",
        _config(lambda s: {"smtp": {"host": "mail", "pass": s}}),
        "configuration_used",
    ),
    # -- URLs and connection strings, under ordinary keys ------------------------------------
    *(
        Shape(f"url {t}", _config(lambda s, t=t: {"dsn": t.format(s)}), "configuration_used")
        for t in (
            "jdbc:postgresql://db.plant.local/ign?user=u&password={}",
            "postgres://deploy:{}@db.plant.local:5432/ign",
            "mongodb+srv://admin:{}@cluster0.example.net/db",
            "https://ops:{}@repo.plant.local/artifacts",
            "amqp://guest:{}@rabbit:5672/",
            "redis://:{}@cache:6379/0",
            "https://api.plant.local/v1?access_token={}&page=2",
            "https://api.plant.local/v1?api_key={}",
        )
    ),
    Shape(
        "ado.net connection string",
        _config(lambda s: {"connection": f"Server=sql01;Database=ign;User Id=svc;Password={s};"}),
        "configuration_used",
    ),
    Shape(
        "odbc connection string",
        _config(lambda s: {"connection": f"Driver={{SQL}};Data Source=x;Pwd={s}"}),
        "configuration_used",
    ),
    Shape(
        "libpq key-value string",
        _config(lambda s: {"conninfo": f"host=db port=5432 password={s} sslmode=require"}),
        "configuration_used",
    ),
    Shape(
        "url in a list",
        _config(lambda s: {"mirrors": [f"https://u:{s}@mirror.plant.local/"]}),
        "configuration_used",
    ),
    # -- free text in every text field -------------------------------------------------------
    Shape(
        "log holding JSON",
        lambda s: {"execution_log": f'start\n{{"credentials": {{"user": "a", "value": "{s}"}}}}'},
        "execution_log",
    ),
    Shape(
        "log holding a JSON list",
        lambda s: {"execution_log": f'cfg {{"servers": [{{"password": "{s}"}}]}} done'},
        "execution_log",
    ),
    Shape(
        "basic auth header",
        lambda s: {"execution_log": f"GET /api\nAuthorization: Basic {s}==\n200"},
        "execution_log",
    ),
    Shape(
        "bearer header",
        lambda s: {"execution_log": f'curl -H "Authorization: Bearer {s}" https://gw'},
        "execution_log",
    ),
    Shape(
        "shell export",
        lambda s: {"execution_log": f"export DB_PASSWORD={s}\nrun"},
        "execution_log",
    ),
    Shape("yaml line", lambda s: {"execution_log": f"db:\n  password: {s}\n"}, "execution_log"),
    Shape(
        "url in log",
        lambda s: {"execution_log": f"connecting to postgresql://deploy:{s}@db/ign"},
        "execution_log",
    ),
    Shape(
        "quoted passwd",
        lambda s: {"execution_log": f'set passwd="{s}" for svc'},
        "execution_log",
    ),
    Shape(
        "lesson: the password is",
        lambda s: {"lessons_learned": [f"the password is {s}, rotate it"]},
        "lessons_learned",
    ),
    Shape(
        "lesson: quoted secret",
        lambda s: {"lessons_learned": [f"set secret: '{s}' before deploying"]},
        "lessons_learned",
    ),
    Shape(
        "lesson: api key is",
        lambda s: {"lessons_learned": [f"the api key is {s}"]},
        "lessons_learned",
    ),
    Shape(
        "failure reason assignment",
        lambda s: {"status": "failed", "failure_reasons": [f"login failed: password={s} rejected"]},
        "failure_reasons",
    ),
    Shape(
        "failure reason connection string",
        lambda s: {
            "status": "failed",
            "failure_reasons": [f"cannot open Server=db;Password={s}; timeout"],
        },
        "failure_reasons",
    ),
    Shape(
        "failure reason url",
        lambda s: {"status": "failed", "failure_reasons": [f"GET https://u:{s}@gw/ failed"]},
        "failure_reasons",
    ),
    Shape(
        "execution name",
        lambda s: {"execution_name": f"Deploy with token={s}"},
        "execution_name",
    ),
    Shape(
        "performance auth header",
        lambda s: {"performance_data": {"cpu_percent": 20.0, "auth_header": f"Basic {s}"}},
        "performance_data",
    ),
    Shape(
        "performance cookie",
        lambda s: {"performance_data": {"memory_mb": 100, "cookie": s}},
        "performance_data",
    ),
    Shape("user id", lambda s: {"user_id": f"svc password={s}"}, "user_id"),
    # -- a plaintext dressed up as encrypted -------------------------------------------------
    Shape(
        "enc:v1 lookalike",
        _config(lambda s: {"db_password": f"enc:v1:{s}"}),
        "configuration_used",
    ),
    Shape(
        "enc:v1 lookalike in text",
        lambda s: {"execution_log": f"token enc:v1:{s} used"},
        "execution_log",
    ),
]


def canary(i: int) -> str:
    """A unique, password-looking value (all digits for the numeric shape)."""
    if SHAPES[i].name == "numeric secret":
        return str(761_093_845_212 + i)
    return f"Zq{i:02d}Kx7Wv{i:02d}m"


def canaries() -> list[tuple[str, str]]:
    return [(shape.name, canary(i)) for i, shape in enumerate(SHAPES)]


def corpus_records(first: int = 200) -> list[dict[str, Any]]:
    """One execution per shape, with ids ``secret-NNN``."""
    records = []
    for i, shape in enumerate(SHAPES):
        fields = shape.build(canary(i))
        record = make_record(first + i, execution_id=f"secret-{i:03d}")
        record["configuration_used"] = {
            **record["configuration_used"],
            "visible_mode": VISIBLE,
            **fields.pop("config", {}),
        }
        record.update(fields)
        records.append(record)
    return records


def leaks(blob: bytes | str, found_in: str) -> list[str]:
    """``found_in: shape`` for each canary in ``blob`` (case-insensitive)."""
    text = blob.lower() if isinstance(blob, bytes) else blob.lower().encode()
    out = []
    for name, secret in canaries():
        needle = secret.lower().encode()
        if needle in text:
            out.append(f"{found_in}: {name}")
    return out


def all_leaks(blobs: Iterable[tuple[str, bytes | str]]) -> list[str]:
    return [leak for where, blob in blobs for leak in leaks(blob, where)]
