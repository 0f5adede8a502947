"""``POST /ask``.

(No ``from __future__ import annotations``: FastAPI must see the request model built inside
:func:`build_router` as a real class, not a string annotation.)
"""

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends

from api.deps import ServiceState, get_service, in_thread, ready_pipeline, responses
from api.errors import ApiError
from api.security import require_read
from api.models import ask_request_model
from qa.config import Settings
from qa.types import AskResult


def build_router(settings: Settings) -> APIRouter:
    """The request model carries the configured question length limit, so it is built per app."""
    router = APIRouter(tags=["qa"])
    AskRequest = ask_request_model(settings.max_question_chars)

    async def ask(
        body: AskRequest,  # type: ignore[valid-type]
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ):
        # every slot taken: this question waits its turn, and is read by the cascade (QA_BUSY_FIRST_PASSAGES)
        limiter = service.model_limiter
        ask = partial(pipeline.ask, busy=True) if limiter.borrowed_tokens >= limiter.total_tokens else pipeline.ask
        try:
            return await in_thread(service, ask, body.question, body.top_k, body.max_answers)
        except ValueError as e:
            raise ApiError(422, "invalid_request", str(e) or "invalid question") from None

    router.add_api_route(
        "/ask", ask, methods=["POST"], response_model=AskResult,
        summary="Answer a question from the documents, with citations",
        responses=responses(400, 401, 403, 413, 422, 503),
        dependencies=[Depends(require_read)],
    )
    return router
