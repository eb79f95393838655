"""Helpers for the poster tests: decode a poster's QR code, compare drawn glyphs with the
font's own rendering of the same text."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.posters import drawing
from app.posters.drawing import TextRun


def decode_qr(data: bytes | Image.Image) -> str:
    """The text of the (single) QR code on a poster, by OpenCV's detector."""
    if isinstance(data, Image.Image):
        array = np.asarray(data.convert("L"))
    else:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    # OpenCV's detector misses some codes on a busy poster at one scale or threshold and
    # reads them at another, depending on the payload: try a few views of the same pixels.
    views = [
        array,
        cv2.threshold(array, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1],
        cv2.resize(array, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST),
        cv2.resize(array, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    ]
    detectors = [cv2.QRCodeDetector()]
    if hasattr(cv2, "QRCodeDetectorAruco"):
        detectors.append(cv2.QRCodeDetectorAruco())
    for detector in detectors:
        for view in views:
            text, _points, _ = detector.detectAndDecode(view)
            if text:
                return text
    return ""


def open_jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    return image


def _ink(image: Image.Image, box, fill, tolerance: int = 90) -> np.ndarray:
    """Pixels of ``box`` close to the text colour ``fill``."""
    pixels = np.asarray(image.crop(box).convert("RGB")).astype(int)
    return np.abs(pixels - np.array(fill)).sum(axis=2) < tolerance


def glyph_match(poster: Image.Image, run: TextRun, face=None) -> tuple[float, int]:
    """(IoU, ink pixel count) of the text drawn on ``poster`` at ``run`` against the same
    string drawn by ``face`` (default: the poster font) at the same place."""
    face = face or drawing.font(run.size, run.bold)
    pad = 6
    box = (run.box[0] - pad, run.box[1] - pad, run.box[2] + pad, run.box[3] + pad)
    reference = Image.new("RGB", poster.size, tuple(255 - v for v in run.fill))
    ImageDraw.Draw(reference).text(run.xy, run.text, font=face, fill=run.fill, anchor=run.anchor)
    drawn, expected = _ink(poster, box, run.fill), _ink(reference, box, run.fill)
    union = (drawn | expected).sum()
    return (drawn & expected).sum() / max(union, 1), int(drawn.sum())


def tofu_face(size: int):
    """A font without Chinese glyphs (what a poster would get without Noto CJK)."""
    return ImageFont.load_default(size)
