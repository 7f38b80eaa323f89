#!/usr/bin/env python3
"""Extracts the real photographs gid's demo uses from the scikit-image wheel on PyPI
(pip download, no install): a motorcycle (Middlebury 2014 stereo benchmark), a cat, a
cup of coffee and an astronaut; and, for the OCR tests, a scanned book page
(ocr/page.png). Usage: sample-images.py OUTPUT_DIR. Idempotent."""
import pathlib
import subprocess
import sys
import tempfile
import zipfile

VERSION = "0.26.0"
PHOTOS = ["motorcycle_left.png", "chelsea.png", "coffee.png", "astronaut.png", "ocr/page.png"]

out = pathlib.Path(sys.argv[1])
if all((out / p).exists() for p in PHOTOS):
    print(f"{out}: sample photos up to date")
    sys.exit(0)
(out / "ocr").mkdir(parents=True, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--only-binary=:all:", "-d", tmp,
         f"scikit-image=={VERSION}"],
        check=True,
    )
    wheel = next(pathlib.Path(tmp).glob("scikit_image-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        for photo in PHOTOS:
            data = z.read(f"skimage/data/{pathlib.Path(photo).name}")
            (out / (photo + ".tmp")).write_bytes(data)
            (out / (photo + ".tmp")).rename(out / photo)
print(f"{out}: {', '.join(PHOTOS)} from scikit-image {VERSION}")
