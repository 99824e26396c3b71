"""Connection errors name the URL and what failed, in one line, without leaking passwords."""

from __future__ import annotations

import pytest

from deploylearn.errors import StoreUnavailableError
from deploylearn.store import open_store


def test_unreachable_neo4j_names_the_url_without_the_password() -> None:
    with pytest.raises(StoreUnavailableError) as info:
        open_store("bolt://deploy:s3cret-pw@127.0.0.1:1")
    message = str(info.value)
    assert message.startswith("cannot reach Neo4j at bolt://127.0.0.1:1")
    assert "s3cret-pw" not in message
    assert "\n" not in message
