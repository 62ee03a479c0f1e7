"""One definition of the tensor file: the Python and C++ readers agree on the shared corpus.

tests/data/tensorfile/valid/*.pbtf must decode; invalid/<code>--<what>.pbtf must be refused with
<code> (docs/tensor-file.md). The C++ verdicts come from tensor_file_check, built with the runner.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pocketbench.runner import tensorfile

from tests import runner_support as support

CORPUS = support.REPO / "tests" / "data" / "tensorfile"
FILES = sorted(CORPUS.glob("*/*.pbtf"))


def python_verdict(path: Path) -> str:
    """The line tensor_file_check prints for `path`, computed by the Python reader."""
    try:
        sets = tensorfile.decode(path.read_bytes())
    except tensorfile.TensorFileError as exc:
        return f"error {exc.code}"
    names = {code: ("bool" if dtype == np.bool_ else dtype.name) for code, dtype in tensorfile.SCALAR_TYPES.items()}
    codes = {dtype: code for code, dtype in tensorfile.SCALAR_TYPES.items()}
    tensors = "".join(
        f"{names[codes[t.dtype]]}:{'x'.join(map(str, t.shape)) or '-'}:{hashlib.sha256(t.tobytes()).hexdigest()};"
        for s in sets
        for t in s
    )
    return f"ok {len(sets)} {tensors}"


def expected(path: Path) -> str:
    return "ok" if path.parent.name == "valid" else f"error {path.name.split('--')[0]}"


def test_corpus_covers_every_rule() -> None:
    codes = {p.name.split("--")[0] for p in CORPUS.glob("invalid/*.pbtf")}
    documented = {
        "short-header", "bad-magic", "bad-version", "zero-count", "counts-exceed-bytes", "truncated-record",
        "reserved-nonzero", "unknown-dtype", "too-many-dims", "negative-dim", "dim-too-large",
        "too-many-elements", "size-mismatch", "truncated-data", "trailing-bytes",
    }  # fmt: skip
    doc = (support.REPO / "docs" / "tensor-file.md").read_text()
    assert all(f"`{code}`" in doc for code in documented)
    assert codes == documented
    assert len(list(CORPUS.glob("valid/*.pbtf"))) >= 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_python_reader_on_the_corpus(path: Path) -> None:
    assert python_verdict(path).startswith(expected(path))


def cpp_verdicts(binary: Path) -> dict[Path, str]:
    proc = subprocess.run(
        [str(binary), *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **support.SANITIZER_ENV},
    )
    verdicts = {}
    for line in proc.stdout.splitlines():
        name, verdict = line.split(" ", 1)
        # An error line carries the C++ message after the code; the agreement is on the code.
        verdicts[Path(name)] = " ".join(verdict.split(" ")[:2]) if verdict.startswith("error") else verdict
    return verdicts


@pytest.mark.parametrize("build", ["release", "asan"])
def test_cpp_reader_agrees_with_python_on_every_file(build: str) -> None:
    folder = support.asan_build() if build == "asan" else support.host_runner().parent
    verdicts = cpp_verdicts(folder / "tensor_file_check")
    assert set(verdicts) == set(FILES)
    for path in FILES:
        assert verdicts[path] == python_verdict(path), path.name
        assert verdicts[path].startswith(expected(path)), path.name


def test_writer_refuses_what_the_reader_refuses() -> None:
    with pytest.raises(tensorfile.TensorFileError) as exc:
        tensorfile.encode([[np.zeros([1] * 17, dtype=np.float32)]])
    assert exc.value.code == "too-many-dims"
    with pytest.raises(tensorfile.TensorFileError) as exc:
        tensorfile.encode([[]])
    assert exc.value.code == "zero-count"
    with pytest.raises(tensorfile.TensorFileError) as exc:
        tensorfile.encode([[np.zeros(2, dtype=np.complex64)]])
    assert exc.value.code == "unknown-dtype"


def test_read_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "in.pbtf"
    bad.write_bytes((CORPUS / "invalid" / "zero-count--issue-15-16-bytes.pbtf").read_bytes())
    with pytest.raises(tensorfile.TensorFileError, match=r"in\.pbtf is not a valid tensor file: .*\(zero-count\)"):
        tensorfile.read(bad)


def mutations(count: int, seed: int) -> list[bytes]:
    """Corpus files with bytes overwritten, cut or appended: inputs no one wrote by hand."""
    rng = np.random.default_rng(seed)
    blobs = [p.read_bytes() for p in FILES]
    out = []
    for _ in range(count):
        blob = bytearray(blobs[rng.integers(len(blobs))])
        kind = rng.integers(3)
        if kind == 0 and blob:
            for _ in range(rng.integers(1, 5)):
                blob[rng.integers(len(blob))] = rng.integers(256)
        elif kind == 1 and blob:
            del blob[rng.integers(len(blob)) :]
        else:
            blob += rng.integers(0, 256, rng.integers(1, 40), dtype=np.uint8).tobytes()
        out.append(bytes(blob))
    return out


def test_readers_agree_on_mutated_files(tmp_path: Path) -> None:
    """Differential check beyond the corpus: both readers give the same verdict on 400 mutants."""
    paths = []
    for i, blob in enumerate(mutations(400, seed=15)):
        paths.append(tmp_path / f"m{i:03d}.pbtf")
        paths[-1].write_bytes(blob)
    binary = support.host_runner().parent / "tensor_file_check"
    proc = subprocess.run([str(binary), *map(str, paths)], capture_output=True, text=True, timeout=60, check=True)
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    verdicts = {Path(k): " ".join(v.split(" ")[:2]) if v.startswith("error") else v for k, v in lines.items()}
    disagreements = [p.name for p in paths if verdicts[p] != python_verdict(p)]
    assert not disagreements, disagreements[:10]
    codes = {v.split(" ")[1] for v in verdicts.values() if v.startswith("error")}
    assert len(codes) >= 8, codes  # the mutants reach rules past the header


def test_python_runner_refuses_an_invalid_file_naming_the_rule(tmp_path: Path, capsys) -> None:
    """The Python-runtime stand-in reads inputs with the same reader: same verdict, same exit (its
    `main`, which `python -m pocketbench.runner.python_runtime` exits with, called here in this
    process: a second interpreter would only import torch and ExecuTorch again)."""
    import json

    from pocketbench.runner import python_runtime

    bad = CORPUS / "invalid" / "zero-count--issue-15-16-bytes.pbtf"
    code = python_runtime.main(
        ["--model", str(tmp_path / "m.pte"), "--inputs", str(bad), "--json", str(tmp_path / "r.json")]
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 2 and report["status"] == "bad_arguments"
    assert "(zero-count)" in report["error"] and bad.name in report["error"]
    assert f"python_runner: {report['error']}" in capsys.readouterr().err
