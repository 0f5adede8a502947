"""``GET /jobs/{id}`` (background writes) and ``GET /trash`` (what can be restored)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends

from api.deps import ServiceState, get_service, ready_pipeline, responses
from api.errors import ApiError
from api.models import JobOut, TrashEntryOut, TrashList
from api.security import require_read

router = APIRouter(dependencies=[Depends(require_read)])


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["documents"], summary="A background write's status",
            responses=responses(401, 403, 404))
async def get_job(job_id: str, service: ServiceState = Depends(get_service)) -> JobOut:
    job = service.writes.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", "unknown job (the newest 500 finished jobs are kept)")
    return JobOut(**vars(job))


@router.get("/trash", response_model=TrashList, tags=["documents"],
            summary="Deleted and replaced documents that can be restored, newest first",
            responses=responses(401, 403, 503))
async def list_trash(pipeline: Any = Depends(ready_pipeline)) -> TrashList:
    trash = getattr(pipeline, "trash", None)
    entries = await anyio.to_thread.run_sync(trash) if trash else []
    return TrashList(entries=[TrashEntryOut(**vars(t)) for t in entries])
