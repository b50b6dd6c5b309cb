"""CLIP byte-pair tokenisation exactly as ImageBind does it (its ``SimpleTokenizer``).

open_clip's tokenizer shares the vocabulary and the BPE algorithm but differs where it matters for
parity, so this module implements ImageBind's behaviour on top of open_clip's vocabulary file:

* cleaning: ``ftfy.fix_text`` → ``html.unescape`` twice → strip → collapse ``\\s+`` (the ``regex``
  module's Unicode whitespace) to one space → strip → lower-case;
* literal ``<|startoftext|>`` / ``<|endoftext|>`` in the text become the special ids 49406 / 49407
  (open_clip spells its special tokens ``<start_of_text>`` / ``<end_of_text>``);
* ids = ``[SOT] + bpe(text)``, truncated to ``context_length - 1`` ids, then ``EOT`` (so EOT is always
  present, at index ≤ context_length - 1), zero-padded (pad id 0, which is the token ``!``).

One addition: lone surrogates (not valid Unicode, but possible in Python strings) are encoded with
``surrogatepass`` instead of crashing.
"""

from __future__ import annotations

import gzip
import html
from functools import lru_cache

import ftfy
import numpy as np
import regex

SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
SOT_ID = 49406
EOT_ID = 49407
PAD_ID = 0
VOCAB_SIZE = 49408
DEFAULT_CONTEXT_LENGTH = 77
#: Merges used by CLIP: lines 1 .. 48894 of the vocabulary file (line 0 is a header).
_NUM_MERGES = 49152 - 256 - 2

_WHITESPACE = regex.compile(r"\s+")
_PRETOKENIZE = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def default_vocab_path() -> str:
    """CLIP's BPE vocabulary, as shipped with open_clip (the same file ImageBind ships)."""
    from open_clip.tokenizer import default_bpe

    return default_bpe()


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte → printable character table (printable bytes map to themselves)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def clean_text(text: str) -> str:
    """ImageBind's text cleaning (see the module docstring)."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    text = _WHITESPACE.sub(" ", text.strip()).strip()
    return text.lower()


class ImageBindTokenizer:
    """Strings → CLIP BPE ids, ImageBind-exact. Thread-safe for reading; the BPE cache only grows."""

    def __init__(self, vocab_path: str | None = None):
        with gzip.open(vocab_path or default_vocab_path(), "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        merges = [tuple(line.split()) for line in lines[1:_NUM_MERGES + 1]]
        byte_chars = list(_byte_to_unicode().values())
        vocab = [*byte_chars, *(c + "</w>" for c in byte_chars), *("".join(m) for m in merges), SOT_TOKEN, EOT_TOKEN]
        self.encoder: dict[str, int] = {token: index for index, token in enumerate(vocab)}
        if len(self.encoder) != VOCAB_SIZE or self.encoder[SOT_TOKEN] != SOT_ID:
            raise ValueError(f"unexpected BPE vocabulary in {vocab_path}: {len(self.encoder)} entries")
        self.decoder = {index: token for token, index in self.encoder.items()}
        self.merge_rank: dict[tuple[str, ...], int] = {merge: rank for rank, merge in enumerate(merges)}
        self._byte_encoder = _byte_to_unicode()
        self._cache: dict[str, tuple[str, ...]] = {SOT_TOKEN: (SOT_TOKEN,), EOT_TOKEN: (EOT_TOKEN,)}

    def bpe(self, word: str) -> tuple[str, ...]:
        """The BPE symbols of one pre-token (already mapped to byte characters)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = [*word[:-1], word[-1] + "</w>"]
        while len(symbols) > 1:
            pairs = {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}
            best = min(pairs, key=lambda pair: self.merge_rank.get(pair, len(self.merge_rank)))
            if best not in self.merge_rank:
                break
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        result = tuple(symbols)
        if len(self._cache) < 100_000:
            self._cache[word] = result
        return result

    def encode(self, text: str) -> list[int]:
        """BPE ids of ``text`` after cleaning, without SOT/EOT."""
        ids: list[int] = []
        for piece in _PRETOKENIZE.findall(clean_text(text)):
            if piece in (SOT_TOKEN, EOT_TOKEN):
                ids.append(self.encoder[piece])
                continue
            word = "".join(self._byte_encoder[b] for b in piece.encode("utf-8", errors="surrogatepass"))
            ids.extend(self.encoder[symbol] for symbol in self.bpe(word))
        return ids

    def __call__(self, text: str, context_length: int = DEFAULT_CONTEXT_LENGTH) -> np.ndarray:
        """One string → ``(context_length,)`` int64 ids: SOT, tokens (truncated), EOT, zero padding."""
        ids = [SOT_ID, *self.encode(text)][: context_length - 1]
        ids.append(EOT_ID)  # always kept, also when the text was truncated
        out = np.full(context_length, PAD_ID, dtype=np.int64)
        out[: len(ids)] = ids
        return out

    def decode(self, ids: list[int] | np.ndarray) -> str:
        """Ids → text (special tokens kept, padding after EOT dropped); for debugging and tests."""
        byte_decoder = {c: b for b, c in self._byte_encoder.items()}
        tokens = []
        for index in [int(i) for i in ids]:
            tokens.append(self.decoder[index])
            if index == EOT_ID:
                break
        text = "".join(tokens)
        specials = {SOT_TOKEN, EOT_TOKEN}
        out = bytearray()
        i = 0
        while i < len(text):
            special = next((s for s in specials if text.startswith(s, i)), None)
            if special:
                out += special.encode()
                i += len(special)
                continue
            out += bytes([byte_decoder[text[i]]]) if text[i] in byte_decoder else text[i].encode()
            i += 1
        return out.decode("utf-8", errors="replace").replace("</w>", " ")


@lru_cache(maxsize=4)
def get_tokenizer(vocab_path: str | None = None) -> ImageBindTokenizer:
    """A shared tokenizer per vocabulary file (loading the vocabulary takes ~0.3 s)."""
    return ImageBindTokenizer(vocab_path)
