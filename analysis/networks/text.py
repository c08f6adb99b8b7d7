"""English text corpora for the character-level LSTM language model (notebook 06), read offline.

- "fortunes" (quick profile): the English fortune-cookie files of Debian's `fortunes` and `fortunes-min`
  packages (fortune-mod 1.99.1, installed under /usr/share/games/fortunes/; about 2.6 million characters).
  Licence, per /usr/share/doc/fortunes/copyright: the BSD licence of the Regents of the University of
  California (1991; the advertising clause deleted), with some files' compilers credited there. The files
  named in `FORTUNE_FILES` (the packages' own list, so other installed fortune packages and the offensive
  `off/` folder never change the corpus) are concatenated in sorted order into `root/fortunes/corpus.txt`,
  whose SHA-256 is kept beside it in `corpus.sha256` (`sha256sum -c` format) and checked on every read.
- "wikitext-2" (full profile, as the paper's PTB/WikiText-2): Merity et al.'s WikiText-2 (Salesforce,
  Wikipedia text under CC BY-SA 3.0). It is not downloaded: place its files under `root/wikitext-2/`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .data import DataUnavailable

DEBIAN_FORTUNES = Path("/usr/share/games/fortunes")
FORTUNE_FILES = (
    "art", "ascii-art", "computers", "cookie", "debian", "definitions", "disclaimer", "drugs", "education",
    "ethnic", "food", "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux", "linuxcookie",
    "literature", "love", "magic", "medicine", "men-women", "miscellaneous", "news", "paradoxum", "people",
    "perl", "pets", "platitudes", "politics", "pratchett", "riddles", "science", "songs-poems", "sports",
    "startrek", "tao", "translate-me", "wisdom", "work", "zippy",
)
WIKITEXT_URL = "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip"
CORPORA = ("fortunes", "wikitext-2")
SPLITS = ("train", "test")
#: share of the fortunes corpus (in characters, up to a fortune boundary) that is the training split
TRAIN_FRACTION = 0.9
UNKNOWN = "<unk>"


def prepare_corpus(name: str, root: Path, download: bool = True) -> Path:
    """Make corpus `name` readable under `root/<name>/` and return that folder (nothing is downloaded)."""
    _check(name, CORPORA, "corpus")
    folder = Path(root) / name
    if name == "wikitext-2":
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "valid", "test"):
            _wikitext_file(folder, split)
        return folder
    if (folder / "corpus.txt").is_file() and (folder / "corpus.sha256").is_file():
        return folder
    missing = [f for f in FORTUNE_FILES if not (DEBIAN_FORTUNES / f).is_file()]
    if missing:
        raise DataUnavailable(
            f"the fortunes corpus needs Debian's fortune files in {DEBIAN_FORTUNES}, but {len(missing)} of "
            f"{len(FORTUNE_FILES)} are missing (e.g. {missing[0]!r}). Install them, as root: "
            "apt-get install -y fortunes (the Makefile's data step does this for the quick profile), and run again."
        )
    parts = []
    for f in sorted(FORTUNE_FILES):
        text = (DEBIAN_FORTUNES / f).read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        parts.append(text if text.endswith("%\n") else text + ("" if text.endswith("\n") else "\n") + "%\n")
    payload = "".join(parts).encode("utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / "corpus.txt", payload)
    _atomic_write(folder / "corpus.sha256", f"{hashlib.sha256(payload).hexdigest()}  corpus.txt\n".encode())
    return folder


def read_corpus(name: str, root: Path, split: str) -> str:
    """The text of split "train" or "test" of corpus `name`, prepared under `root` first if needed."""
    _check(name, CORPORA, "corpus")
    _check(split, SPLITS, "split")
    folder = prepare_corpus(name, root, download=False)
    if name == "wikitext-2":
        return _wikitext_file(folder, split).read_text(encoding="utf-8")
    path = folder / "corpus.txt"
    payload = path.read_bytes()
    expected = (folder / "corpus.sha256").read_text().split()[0]
    if hashlib.sha256(payload).hexdigest() != expected:
        raise ValueError(f"{path} does not match its checksum in corpus.sha256 (a damaged copy): "
                         f"delete {folder} so that it is prepared again")
    text = payload.decode("utf-8")
    target = int(len(text) * TRAIN_FRACTION)
    boundary = text.rfind("\n%\n", 0, target)
    cut = boundary + 3 if boundary >= 0 else target
    return text[:cut] if split == "train" else text[cut:]


def vocabulary(text: str, size: int | None = None) -> tuple[str, ...]:
    """Index 0 for "<unk>", then the characters of `text`, most frequent first (ties by code point); `size` caps it."""
    if size is not None and size < 1:
        raise ValueError(f"size must be at least 1 (room for {UNKNOWN!r}), got {size}")
    points, counts = np.unique(_code_points(text), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    chars = tuple(chr(int(p)) for p in points[order])
    return ((UNKNOWN,) + chars)[:size]


def encode(text: str, vocab: tuple[str, ...]) -> torch.Tensor:
    """The index in `vocab` of each character of `text`, as a long tensor; 0 ("<unk>") for any other."""
    codes = _code_points(text)
    keys = np.array([ord(c) for c in vocab[1:]] + [-1], dtype=np.int64)  # -1: a sentinel matching nothing
    order = np.argsort(keys)
    keys, ids = keys[order], np.append(np.arange(1, len(vocab)), 0)[order]
    position = np.searchsorted(keys, codes).clip(max=len(keys) - 1)
    return torch.from_numpy(np.where(keys[position] == codes, ids[position], 0).astype(np.int64))


def sequences(tokens: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of `length` + 1 tokens as inputs (m, length) and next-token targets (m, length)."""
    if tokens.ndim != 1 or length < 1:
        raise ValueError(f"need a 1-d token tensor and length >= 1, got shape {tuple(tokens.shape)} and {length}")
    m = len(tokens) // (length + 1)
    if m < 1:
        raise ValueError(f"{len(tokens)} tokens do not fill one window of {length + 1}")
    windows = tokens[: m * (length + 1)].reshape(m, length + 1)
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def _wikitext_file(folder: Path, split: str) -> Path:
    for suffix in ("tokens", "raw"):
        if (folder / f"wiki.{split}.{suffix}").is_file():
            return folder / f"wiki.{split}.{suffix}"
    raise DataUnavailable(
        f"wikitext-2 is not downloaded here: place wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens "
        f"(or the raw release's wiki.train.raw, wiki.valid.raw, wiki.test.raw) in {folder}; they are in "
        f"Salesforce's WikiText-2 release, e.g. {WIKITEXT_URL} (missing: wiki.{split}.tokens)."
    )


def _atomic_write(path: Path, payload: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(payload)
    part.replace(path)


def _check(value: str, valid: tuple[str, ...], what: str) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; choose one of {valid}")
