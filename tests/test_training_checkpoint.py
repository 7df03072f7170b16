"""An unreadable checkpoint is one line naming the file and what is wrong with it, in our words."""
from __future__ import annotations

import pytest
import torch

from training.checkpoint import load_checkpoint, save_checkpoint
from vln.errors import DataFormatError


def one_line_error(path, fmt="clipvil-checkpoint-v1") -> str:
    with pytest.raises(DataFormatError) as err:
        load_checkpoint(path, fmt=fmt)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "\n" not in msg, msg
    assert "weights_only" not in msg and "Traceback" not in msg
    return msg


def test_empty_truncated_and_foreign_files(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.randn(64, 64)}, {"iteration": 3})
    assert load_checkpoint(good)[1] == {"iteration": 3}
    data = good.read_bytes()

    (tmp_path / "empty.pt").write_bytes(b"")
    assert "is empty (0 bytes)" in one_line_error(tmp_path / "empty.pt")
    for cut in (len(data) // 2, len(data) - 10, 100):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        assert "is cut off" in one_line_error(tmp_path / "cut.pt")
    (tmp_path / "params.pt").write_text('{"lr": 0.001}\n')
    assert "is not a checkpoint but a text file" in one_line_error(tmp_path / "params.pt")
    (tmp_path / "noise.pt").write_bytes(bytes(range(7, 255)) * 4)
    assert "is not a checkpoint (unknown binary content" in one_line_error(tmp_path / "noise.pt")
    torch.save({"weight": torch.ones(2)}, tmp_path / "bare.pt")  # a state dict saved by hand
    assert ": is a torch file without a 'format' tag (keys ['weight'])" in one_line_error(tmp_path / "bare.pt")
    assert "field 'format': is 'clipvil-checkpoint-v1', expected 'other-v1'" in one_line_error(good, fmt="other-v1")


def test_corrupt_member_and_python_objects_and_torchscript(tmp_path):
    import argparse

    # what the original EnvDrop code saved beside its weights: its argparse arguments
    torch.save({"format": "clipvil-checkpoint-v1", "tensors": {}, "meta": "{}",
                "args": argparse.Namespace(lr=1e-4)}, tmp_path / "objects.pt")
    msg = one_line_error(tmp_path / "objects.pt")
    assert "holds Python objects (argparse.Namespace) besides tensors and numbers" in msg
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "model.pt")
    assert "is a TorchScript model archive, not a training checkpoint" in one_line_error(tmp_path / "model.pt")
    good = save_checkpoint(tmp_path / "flip.pt", {"w": torch.zeros(4096)}, {})
    data = good.read_bytes()
    damaged = {"weights": len(data) // 2, "header": 200, "index": len(data) - 300}
    expected = {"weights": "fails its checksum", "header": "is corrupt", "index": "its archive index is damaged"}
    for where, offset in damaged.items():
        bad = bytearray(data)
        bad[offset: offset + 64] = b"\xff" * 64
        (tmp_path / f"{where}.pt").write_bytes(bytes(bad))
        assert expected[where] in one_line_error(tmp_path / f"{where}.pt"), where


def test_scripts_report_an_empty_checkpoint_in_one_line(tmp_path):
    from scripts import export_submission
    from vln.errors import run_script

    (tmp_path / "best.pt").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_:
        run_script(lambda: export_submission.main(["--checkpoint", str(tmp_path / "best.pt"), "--out",
                                                   str(tmp_path / "s.json")]))
    assert exit_.value.code == (f"error: {tmp_path / 'best.pt'}: is empty (0 bytes): the write or copy that made it "
                                "was interrupted; delete it or copy it again")
