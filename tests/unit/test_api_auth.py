"""The API's token file (every way it can be wrong is refused with a message naming the file and
the token) and the token lookup (every configured token is compared, in constant time)."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest

from streams.api import api_auth
from streams.api.api_auth import ApiToken, TokenFileError, TokenSet, bearer, load_tokens

GOOD = '[[tokens]]\nname = "ops"\ntoken = "0123456789abcdef0123"\nscopes = ["admin"]\n'


def test_a_good_token_file_gives_each_token_its_scopes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(GOOD + '[[tokens]]\nname = "dash"\ntoken = "fedcba9876543210fedc"\nscopes = ["read"]\n')
    tokens = load_tokens(path)
    assert [(t.name, t.scopes) for t in tokens.tokens] == [
        ("ops", frozenset({"admin"})),
        ("dash", frozenset({"read"})),
    ]
    assert not tokens.open
    assert tokens.find("fedcba9876543210fedc") == tokens.tokens[1]
    assert tokens.find("fedcba9876543210fedX") is None
    assert tokens.tokens[0].allows("ingest") and not tokens.tokens[1].allows("ingest")
    assert "0123456789abcdef" not in repr(tokens.tokens[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("[[tokens]\nname = 1", "not TOML"),
        ("", "needs at least one [[tokens]] table"),
        ('[[tokens]]\nname = "ops"\ntoken = "short"\nscopes = ["admin"]\n', "16+ characters"),
        ('[[tokens]]\nname = "ops"\ntoken = "0123456789abcdef0123"\nscopes = ["root"]\n', "`scopes` must be"),
        ('[[tokens]]\nname = "ops"\ntoken = "0123456789abcdef0123"\nscopes = []\n', "`scopes` must be"),
        ('[[tokens]]\ntoken = "0123456789abcdef0123"\nscopes = ["read"]\n', "`name` must be"),
        (GOOD + GOOD.replace("0123", "9999"), "name 'ops' is used twice"),
    ],
    ids=["missing", "bad-toml", "empty", "short", "unknown-scope", "no-scope", "no-name", "duplicate"],
)
def test_a_wrong_token_file_is_refused_with_what_is_wrong(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "tokens.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TokenFileError) as refused:
        load_tokens(path)
    assert str(path) in str(refused.value) and message in str(refused.value)


def test_find_compares_the_presented_token_with_every_token(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return compare(a, b)

    monkeypatch.setattr(api_auth.hmac, "compare_digest", counting)
    tokens = TokenSet(
        tuple(
            ApiToken(f"t{i}", f"secret-number-{i}-0123456789".encode(), frozenset({"read"})) for i in range(3)
        )
    )
    for presented, found in [
        ("secret-number-0-0123456789", "t0"),
        ("secret-number-2-0123456789", "t2"),
        ("not-a-token-at-all-0000", None),
        (b"secret-\xff".decode("utf-8", "surrogateescape"), None),  # a header that is not UTF-8
    ]:
        compared.clear()
        token = tokens.find(presented)
        assert (token.name if token else None) == found
        assert compared == [t.secret for t in tokens.tokens], presented


def test_bearer_takes_the_token_of_a_bearer_header_only() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc  ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None
