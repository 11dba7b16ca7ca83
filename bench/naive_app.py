"""The naive baseline: what a tutorial's FastAPI endpoint does. It loads the SavedModel through
Keras (`TFSMLayer` in a Keras model) and, per request, decodes the upload with Pillow, resizes
it to 28x28 and calls `model.predict` on it, on the event loop.

Run as `python -m bench.naive_app --models-dir DIR --port N`.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI, File, UploadFile
from PIL import Image

from bench.servers import newest_version
from training.cars import FEATURE_NAMES
from training.signatures import SERVING_SIGNATURE_KEY


def load_digit_model(path: Path) -> Any:
    import keras

    return keras.Sequential(
        [keras.layers.TFSMLayer(str(path), call_endpoint=SERVING_SIGNATURE_KEY)]
    )


def load_mpg_model(path: Path) -> Any:
    import keras

    # The Keras export's `serve` endpoint takes the features as one dict; `serving_default`
    # takes them as keyword arguments, which TFSMLayer cannot pass.
    inputs = {name: keras.Input(shape=(), name=name, dtype="float32") for name in FEATURE_NAMES}
    outputs = keras.layers.TFSMLayer(str(path), call_endpoint="serve")(inputs)
    return keras.Model(inputs, outputs)


def create_app(models_dir: Path) -> FastAPI:
    """Serves the newest version of each model, as ours does unpinned."""
    digit_model = load_digit_model(newest_version(models_dir / "digit"))
    mpg_model = load_mpg_model(newest_version(models_dir / "mpg"))
    app = FastAPI(title="naive", docs_url=None, redoc_url=None, openapi_url=None)

    def to_array(data: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
        return np.asarray(image, dtype=np.float32) / 255.0

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/digit")
    async def digit(file: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
        images = np.stack([to_array(await upload.read()) for upload in file])
        probabilities = digit_model.predict(images, verbose=0)["probabilities"]
        results = [
            {"digit": int(row.argmax()), "probability": float(row.max())} for row in probabilities
        ]
        return results[0] if len(results) == 1 else {"results": results}

    @app.post("/mpg")
    async def mpg(cars: Annotated[dict[str, Any] | list[dict[str, Any]], Body()]) -> Any:
        rows = [cars] if isinstance(cars, dict) else cars
        features = {
            name: np.asarray([float(_number(car[name])) for car in rows], np.float32)
            for name in FEATURE_NAMES
        }
        mpg = mpg_model.predict(features, verbose=0)["mpg"]
        results = [{"mpg": float(value)} for value in np.ravel(mpg)]
        return results[0] if isinstance(cars, dict) else {"results": results}

    return app


def _number(value: Any) -> float:
    origins = {"usa": 1, "europe": 2, "japan": 3}
    return float(origins.get(value, value)) if isinstance(value, str) else float(value)


def main() -> None:
    import uvicorn

    from service.cli import UVICORN_OPTIONS

    parser = argparse.ArgumentParser(prog="python -m bench.naive_app")
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    app = create_app(options.models_dir)
    uvicorn.run(app, host="127.0.0.1", port=options.port, **UVICORN_OPTIONS)


if __name__ == "__main__":
    main()
