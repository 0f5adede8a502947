"""Property-based fuzzing of the HTTP API against its own OpenAPI schema (schemathesis 4).

Runs every operation with generated valid and invalid inputs against the app wired to the real
pipeline with small stand-in models (tests/lite_pipeline.py: the real write path -- journal,
trash, index versions -- on a temporary copy of seeds/), and checks: no 5xx, status codes /
content types / bodies / headers as documented in the schema. Bounded: ``MAX_EXAMPLES`` per
operation (11 operations: about 1,000 cases).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.python import asgi

from api.app import create_app
from lite_pipeline import LitePipeline, lite_settings
from qa.config import PROJECT_ROOT

MAX_EXAMPLES = 130


class _Target:
    """The app under test, replaceable: the stateful phase gives every scenario a fresh app over its own copy of
    seeds/ (corpus, index, trash, jobs). With one app for all scenarios, a scenario that Hypothesis replays met
    the documents that earlier scenarios had left, and Hypothesis stopped with FlakyStrategyDefinition (a
    bundle unexpectedly empty) in about one run in ten."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


def _fresh_app(folder: Path):
    shutil.copytree(PROJECT_ROOT / "seeds", folder / "corpus")
    s = lite_settings(folder / "corpus", folder / "index", max_upload_bytes=20_000, async_upload_bytes=10_000,
                      allowed_hosts="localhost,testserver", reload_interval_s=0)
    app = create_app(s, LitePipeline(s), background_warm_up=False)
    with asgi.get_client(app) as client:  # started as schemathesis.openapi.from_asgi starts the first one
        client.get("/openapi.json")
    return app


def _make_schema():
    # Built at import (schemathesis parametrizes at collection time); removed at module teardown.
    tmp = Path(tempfile.mkdtemp(prefix="qa-fuzz-"))
    target = _Target(_fresh_app(tmp / "app-0"))
    return tmp, target, schemathesis.openapi.from_asgi("/openapi.json", target)


_TMP, _TARGET, schema = _make_schema()
_SCENARIOS = {"n": 0}


CASES = {"n": 0, "5xx": 0}
STATEFUL: dict[str, int] = {}  # "METHOD path status" -> calls in the stateful phase


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(_TMP, ignore_errors=True)
    print(f"\nschemathesis: {CASES['n']} cases, {CASES['5xx']} answered 5xx; stateful phase: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(STATEFUL.items())))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_api_conforms_to_its_schema(case):
    # default checks: not_a_server_error, status_code_conformance, content_type_conformance,
    # response_schema_conformance, response_headers_conformance, ...
    excluded = []
    if (case.method.upper(), case.path) in (("POST", "/documents"), ("PUT", "/documents/{doc_id}")):
        # The schema cannot express the file-name and content rules (UTF-8 text, .txt/.md, no
        # path separators...), so schema-valid uploads may rightly get 400; tests/test_api.py
        # covers those rules. All other checks still apply.
        excluded.append(positive_data_acceptance)
    if _QUESTION_WITHOUT_WORD(case):
        excluded.append(positive_data_acceptance)
    CASES["n"] += 1
    response = case.call_and_validate(excluded_checks=excluded)
    CASES["5xx"] += response.status_code >= 500
    assert response.status_code < 500
    if response.status_code >= 400 and case.path != "/ready":
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body



# The stateful phase: sequences of calls linked through responses (ids from one call feed the
# next: upload -> get / put / delete -> restore), links inferred by schemathesis from the schema.
APIWorkflow = schema.as_state_machine()


class StatefulChecks(APIWorkflow):
    def setup(self):
        # every scenario starts from the same state: a fresh app over a fresh copy of seeds/
        _SCENARIOS["n"] += 1
        _TARGET.app = _fresh_app(_TMP / f"app-{_SCENARIOS['n']}")

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        CASES["n"] += 1
        CASES["5xx"] += response.status_code >= 500
        STATEFUL[f"{case.method.upper()} {case.path} {response.status_code}"] = STATEFUL.get(
            f"{case.method.upper()} {case.path} {response.status_code}", 0) + 1
        assert response.status_code < 500, (case.method, case.path, response.status_code)
        excluded = [positive_data_acceptance] if _UPLOAD_LIKE(case) or _QUESTION_WITHOUT_WORD(case) else []
        case.validate_response(response, additional_checks=additional_checks, excluded_checks=excluded,
                               transport_kwargs=kwargs or None)


def _QUESTION_WITHOUT_WORD(case) -> bool:
    """A question with no letter or digit ("?", U+200B): refused (422) by a rule the schema only states in words,
    since JSON Schema's regular expressions read \\w as ASCII (a `pattern` made "*Ñ" invalid there while the
    server rightly answers it); tests/test_api.py covers the rule."""
    body = case.body if (case.method.upper(), case.path) == ("POST", "/ask") else None
    return isinstance(body, dict) and isinstance(body.get("question"), str) and not re.search(r"\w", body["question"])


def _UPLOAD_LIKE(case) -> bool:
    return (case.method.upper(), case.path) in (("POST", "/documents"), ("PUT", "/documents/{doc_id}"))


class TestStatefulWorkflow(StatefulChecks.TestCase):
    settings = settings(
        max_examples=60,
        stateful_step_count=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
