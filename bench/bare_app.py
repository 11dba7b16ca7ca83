"""The HTTP-stack ceiling: FastAPI endpoints that receive exactly the requests the service gets
(the same multipart upload read through `UploadFile`, the same car JSON validated into the same
pydantic `Car`) and answer a constant. Whatever the service does beyond this is its own cost.

Run as `python -m bench.bare_app --port N`, under the service's own uvicorn options.
"""

from __future__ import annotations

import argparse
from typing import Annotated

from fastapi import Body, FastAPI, File, UploadFile
from pydantic import BaseModel

from service.schemas.mpg import Car

DIGIT_ANSWER = {"digit": 7, "probability": 1.0}
MPG_ANSWER = {"mpg": 30.0}


def create_app() -> FastAPI:
    app = FastAPI(title="bare", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/digit")
    async def digit(file: Annotated[list[UploadFile], File()]) -> dict[str, object]:
        for upload in file:
            await upload.read()
        if len(file) == 1:
            return DIGIT_ANSWER
        return {"results": [DIGIT_ANSWER] * len(file)}

    @app.post("/mpg")
    async def mpg(cars: Annotated[Car | list[Car], Body()]) -> dict[str, object]:  # type: ignore[valid-type]
        if isinstance(cars, BaseModel):
            return MPG_ANSWER
        return {"results": [MPG_ANSWER] * len(cars)}

    return app


def main() -> None:
    import uvicorn

    from service.cli import UVICORN_OPTIONS

    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=options.port, **UVICORN_OPTIONS)


if __name__ == "__main__":
    main()
