import pytest

from services.cli import main

pytest.importorskip("pyx12", reason="pyx12 is not installed (pip install '.[validate]')")


def test_validate_accepts_simulated_files_and_rejects_a_broken_one(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "sim"), "--claims", "200", "--no-verify"]) == 0
    good = sorted((tmp_path / "sim" / "remittances").glob("*.835"))[0]
    broken = tmp_path / "broken.835"
    text = good.read_text()
    se_start = text.index("SE*")
    broken.write_text(text[:se_start] + "SE*999" + text[text.index("*", se_start + 3):])
    capsys.readouterr()
    assert main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", str(good), str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: INVALID" in out
