import pytest

from affectflow.config import load_config, parse_override
from affectflow.errors import ConfigError


def test_defaults_file_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  corpus: x\n  features: [a, b]\nmodel:\n  d_model: 64\ntraining:\n  lr: 1\n")
    cfg = load_config(f, ["training.lr=5e-4", "model.bidirectional=true", "data.window.size=10", "data.window.hop=5"])
    assert cfg.data.features == ["a", "b"] and cfg.training.lr == 5e-4
    assert cfg.model.type == "gru" and cfg.model.params["d_model"] == 64 and cfg.model.params["bidirectional"] is True
    assert cfg.training.epochs == 60  # default kept
    assert cfg.to_dict()["model"]["d_model"] == 64


def test_override_parsing():
    assert parse_override("a.b=[1, 2]") == {"a": {"b": [1, 2]}}
    assert parse_override("a=null") == {"a": None}
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("training.lr")


@pytest.mark.parametrize(
    "override,match",
    [
        ("training.lrr=1", r"Unknown key\(s\) \['lrr'\] in `training`; valid keys: \['loss', 'optimizer', 'lr'"),
        ("training.epochs=ten", r"`training.epochs` must be an integer"),
        ("model.type=lstmx", r"Unknown model 'lstmx'; valid models:"),
        ("model.hidden=3", r"Model 'gru' has no parameters \['hidden'\]; valid parameters:"),
        ("data.normalize=minmax", r"`data.normalize` must be one of"),
        ("data.window.hop=500", r"`window.hop` must be an integer in \[1, window.size=200\]"),
        ("training.loss=huber", r"`training.loss` must be one of"),
        ("data.corpus=", r"`data.corpus` is not set"),
        ("data.features=[]", r"`data.features` is empty"),
    ],
)
def test_errors_say_what_is_wrong(override, match):
    base = [] if override.startswith("data.corpus") else ["data.corpus=x"]
    with pytest.raises(ConfigError, match=match):
        load_config(None, [*base, override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    f = tmp_path / "bad.yaml"
    f.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(f)


def test_validate_checks_the_registries_and_the_config_module_stays_light():
    """config sits above the layers it names: validate() reaches the model, loss and task registries (imported
    when it runs), while importing affectflow.config loads no torch (`affectflow extract` imports it for --set)."""
    import subprocess
    import sys

    from affectflow.config import TrainingConfig, config_from_dict
    from affectflow.training import settings

    assert TrainingConfig is settings.TrainingConfig  # re-exported from its new home
    for key, value, match in [("model", {"type": "lstmx"}, "Unknown model 'lstmx'; valid models:"),
                              ("training", {"loss": "huber"}, "`training.loss` must be one of"),
                              ("data", {"corpus": "x", "task": "frames"}, "`data.task` must be one of")]:
        d = {"data": {"corpus": "x", "features": ["a"]}, key: value}
        if key == "data":
            d["data"] = {**value, "features": ["a"]}
        with pytest.raises(ConfigError, match=match):
            config_from_dict(d).validate()
    code = "import sys, affectflow.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
