"""Fixtures for the packaging tests: a tiny T5 model folder, its archive, and a moto S3 server.

The model is a T5 (d_model 64, one encoder and one decoder layer) with a small word-level
tokenizer built with the `tokenizers` library, taught four facts by heart in a few dozen steps,
so "answers correctly" is a real assertion: the handler must return the memorised answer, not
just whatever a random model emits (a random T5 emits only padding, i.e. an empty string).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import socket
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

WORDS = [
    "question",
    ":",
    "?",
    "who",
    "what",
    "when",
    "where",
    "was",
    "is",
    "the",
    "a",
    "of",
    "in",
    "born",
    "died",
    "wrote",
    "painted",
    "ada",
    "lovelace",
    "marie",
    "curie",
    "paris",
    "london",
    "1815",
    "1867",
    "poet",
    "painter",
    "scientist",
]
# question -> answer the fixture model learns by heart (in the model's training input format)
FACTS = {
    "who was ada lovelace?": "poet",
    "who was marie curie?": "scientist",
    "where was marie curie born?": "paris",
    "when was ada lovelace born?": "1815",
}
TRAINING_RECORD = {
    "base_model": "tiny",
    "data": {"fingerprint": "f" * 64},
    "libraries": {"transformers": "5.23.0", "torch": "2.13.0"},
}


def build_tiny_model(folder: Path, *, seed: int = 0, steps: int = 60) -> Path:
    """Write config.json, generation_config.json, model.safetensors and tokenizer files of a tiny
    T5 that has learnt FACTS (questions given as "question: <q>", as the handler formats them)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        T5Config,
        T5ForConditionalGeneration,
    )

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {token: index for index, token in enumerate([*specials, *WORDS])}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = T5Config(
        vocab_size=len(vocab),
        d_model=64,
        d_ff=128,
        d_kv=16,
        num_heads=4,
        num_layers=1,
        num_decoder_layers=1,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0, eos_token_id=1, pad_token_id=0, max_new_tokens=8
    )
    _learn_facts(model, tokenizer, steps)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "training_record.json").write_text(json.dumps(TRAINING_RECORD), encoding="utf-8")
    return folder


def _learn_facts(model: Any, tokenizer: Any, steps: int) -> None:
    """A few dozen Adam steps on FACTS. One torch thread: on two shared cores, two threads
    spin against the other test processes and make these 60 tiny steps 20x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train(model, tokenizer, steps)
    finally:
        torch.set_num_threads(threads)


def _train(model: Any, tokenizer: Any, steps: int) -> None:
    import torch

    questions = [f"question: {q}" for q in FACTS]
    inputs = tokenizer(questions, return_tensors="pt", padding=True)
    labels = tokenizer(list(FACTS.values()), return_tensors="pt", padding=True)["input_ids"]
    labels[labels == 0] = -100  # padding does not count in the loss
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    answers = tokenizer.batch_decode(
        model.generate(**inputs, max_new_tokens=4), skip_special_tokens=True
    )
    if answers != list(FACTS.values()):
        raise RuntimeError(f"the fixture model did not learn its facts: {answers}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5 model folder (read-only by convention: copy it before changing anything)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def tiny_archive(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.tar.gz built from tiny_model_dir by `ops.package.build` (read-only by convention)."""
    from qa_console.ops.packaging.build import build

    return build(tiny_model_dir, tmp_path_factory.mktemp("archive") / "model.tar.gz").archive


@dataclass(frozen=True)
class MotoS3:
    endpoint: str
    region: str = "us-east-1"

    def client(self, service: str = "s3") -> object:
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint)

    @property
    def target(self) -> Target:
        """The AWS profile `moto` (its endpoint_url is this server), as the CLI's --target moto."""
        from qa_console.ops.aws.target import Target

        return Target.profile("moto", self.region)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_s3(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoS3:
    """Route every boto3 client of this test (and its subprocesses) to the moto server, with fake
    credentials, and offer the same settings as an AWS profile named `moto` for the CLI."""
    import boto3

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile moto]\nregion = us-east-1\nendpoint_url = {moto_server}\n", encoding="utf-8"
    )
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[moto]\naws_access_key_id = testing\naws_secret_access_key = testing\n", encoding="utf-8"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    boto3.DEFAULT_SESSION = None
    return MotoS3(endpoint=moto_server)


# --- crafting archives entry by entry (the check and handler tests make bad ones) ---------------

Entry = tuple[tarfile.TarInfo, bytes | None]


def read_entries(archive: Path) -> list[Entry]:
    entries: list[Entry] = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            entries.append((copy.copy(member), handle.read() if handle else None))
    return entries


def file_entry(name: str, data: bytes) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def restamp_manifest(entries: list[Entry]) -> list[Entry]:
    """Recompute manifest.json for the regular files, so only the intended defect shows; the
    versions an existing manifest records (what deploy picks the image by) are kept."""
    files = {
        info.name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for info, data in entries
        if info.isfile() and data is not None and info.name != "manifest.json"
    }
    old = next((data for info, data in entries if info.name == "manifest.json" and data), None)
    fields = {key: value for key, value in json.loads(old or b"{}").items() if key != "files"}
    manifest = json.dumps({"format": 1, **fields, "files": files}).encode()
    kept = [(info, data) for info, data in entries if info.name != "manifest.json"]
    return [*kept, file_entry("manifest.json", manifest)]


def write_archive(path: Path, entries: list[Entry], *, compress: bool = True) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def replace(entries: list[Entry], name: str, data: bytes) -> list[Entry]:
    return [file_entry(name, data) if info.name == name else (info, d) for info, d in entries]


def with_handler(entries: list[Entry], source: str) -> list[Entry]:
    return restamp_manifest(replace(entries, "code/inference.py", source.encode()))
