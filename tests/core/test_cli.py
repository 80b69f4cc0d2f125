import json

import pytest

from affectflow.cli.main import main


def test_generate_train_evaluate_predict(tmp_path, capsys):
    c = tmp_path / "c"
    assert main(["generate", str(c), "--subjects", "6", "--duration", "80", "-q"]) == 0
    assert "recordings: 6" in capsys.readouterr().out
    assert main(["info", str(c)]) == 0
    args = ["train", "--corpus", str(c), "--runs-dir", str(tmp_path / "runs"), "-q", "--set", "training.seeds=[1]",
            "--set", "data.features=[acoustic,visual,physio]",
            "--set", "training.epochs=1", "--set", "model.d_model=8", "--set", "data.window.size=20",
            "--set", "data.window.hop=10", "--set", "training.lr=5e-3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| test | arousal |" in out
    run = next((tmp_path / "runs").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert main(["evaluate", str(run), "--partitions", "test", "-q", "--device", "cpu"]) == 0
    assert main(["predict", str(run), "--partitions", "test", "--out", str(tmp_path / "p"), "-q"]) == 0
    assert "written to" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["train", "--corpus", "/nonexistent/corpus"], "Corpus folder '/nonexistent/corpus' does not exist"),
        (["train", "--set", "data.corpus=x", "--set", "training.lrr=1"], "Unknown key(s) ['lrr'] in `training`"),
        (["train", "--config", "/nonexistent.yaml"], "Config file '/nonexistent.yaml' does not exist"),
        (["info", "/nonexistent"], "does not exist"),
        (["evaluate", "/tmp"], "not an affectflow run directory"),
    ],
)
def test_user_errors_are_one_paragraph_not_a_traceback(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err.replace("\n", " ") and "Traceback" not in err
    assert err.startswith(f"affectflow {argv[0]}: error:")
