"""/v1/generations: a prompt (or chat) completed by up to four models side by side."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import GenerationDep, OwnerDep, QueueDep, SessionDep, SettingsDep
from server.schemas.common import ERRORS
from server.schemas.generations import GenerationIn, GenerationOut
from server.services.generations import generation_out, start_generation

router = APIRouter(prefix="/v1/generations", tags=["generations"], responses=ERRORS)


@router.post("", status_code=201, response_model=GenerationOut, summary="Start a generation")
def create(
    body: GenerationIn, session: SessionDep, owner: OwnerDep, settings: SettingsDep, queue: QueueDep
) -> GenerationOut:
    """One completion per model with the same sampling settings, run on the light queue with a
    short time limit; poll GET /v1/generations/{id} until `status` is succeeded or failed. A
    model whose job has a reward gets its completion scored against `fields`."""
    return generation_out(session, start_generation(session, queue, owner, body, settings))


@router.get("/{generation_id}", response_model=GenerationOut, summary="Get a generation")
def get_one(generation: GenerationDep, session: SessionDep) -> GenerationOut:
    return generation_out(session, generation)
