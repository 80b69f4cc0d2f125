"""The bottom-layer file helpers (affectflow.fsutil) and the one override parser."""

import os
import stat

import pytest

from affectflow import fsutil
from affectflow.config import parse_override, split_override
from affectflow.errors import ConfigError, CorpusError


def test_old_import_paths_are_the_same_objects():
    import affectflow.corpus as corpus_pkg
    from affectflow.corpus import corpus as old
    from affectflow.errors import ExtractionError
    from affectflow.features import base

    for name in ["atomic_write", "write_json", "child_path", "check_name", "staged_folder", "current_umask"]:
        assert getattr(old, name) is getattr(fsutil, name)
    assert old._SAFE_NAME is fsutil.SAFE_NAME
    assert corpus_pkg.atomic_write is fsutil.atomic_write
    assert base.ExtractionError is ExtractionError


def test_child_path_stays_in_its_folder(tmp_path):
    assert fsutil.child_path(tmp_path, "rec_1", ".csv") == tmp_path / "rec_1.csv"
    for bad in ["..", "../x", "a/b", ".hidden", "", "a b"]:
        with pytest.raises(CorpusError, match="recording"):
            fsutil.child_path(tmp_path, bad, ".csv", kind="recording")
    assert fsutil.is_safe_name("S01+a.b-c_d") and not fsutil.is_safe_name(3)


def test_atomic_write_leaves_no_partial_file_and_follows_umask(tmp_path):
    target = tmp_path / "sub" / "f.json"

    def fail(p):
        p.write_text("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        fsutil.atomic_write(target, fail)
    assert not target.exists() and os.listdir(target.parent) == []
    import numpy as np

    fsutil.write_json(target, {"a": np.float32(0.5), "b": np.arange(2), "c": tmp_path})
    assert target.read_text() == '{\n  "a": 0.5,\n  "b": [\n    0,\n    1\n  ],\n  "c": "%s"\n}\n' % tmp_path
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~fsutil.current_umask()


def test_one_meaning_of_an_override():
    assert split_override(" a.b = [1, 2]") == ("a.b", [1, 2])
    assert split_override("a=") == ("a", None) == split_override("a=  ") == split_override("a=null")
    assert split_override('a=""') == ("a", "")
    assert split_override("a=x=y") == ("a", "x=y")
    assert parse_override("a.b.c=3") == {"a": {"b": {"c": 3}}}
    for bad, match in [("a", "key.path=value"), ("=1", "empty key"), ("a..b=1", "empty key"), ("a=[1", "not valid YAML")]:
        with pytest.raises(ConfigError, match=match):
            split_override(bad)


def test_serve_and_extract_read_overrides_like_train():
    from affectflow.serve.settings import ServeSettings

    s = ServeSettings.from_overrides(["max_upload_mb=7"])
    assert s.max_upload_mb == 7.0 and isinstance(s.max_upload_mb, float)
    with pytest.raises(ConfigError, match="not valid YAML"):
        ServeSettings.from_overrides(["max_upload_mb=[1"])


def test_installed_file_finds_a_packaged_file_and_names_what_is_missing():
    from pathlib import Path

    import affectflow

    found = fsutil.installed_file("affectflow", "fsutil.py", not_installed="-", missing="-", error=ConfigError)
    assert found == Path(affectflow.__file__).parent / "fsutil.py"
    with pytest.raises(ConfigError, match=r"^no such package$"):
        fsutil.installed_file("affectflow_no_such_pkg", "x", not_installed="no such package", missing="-",
                              error=ConfigError)
    with pytest.raises(ModuleNotFoundError) as e:
        fsutil.installed_file("affectflow", "data", "nope.bin", not_installed="-", missing="{path!r} not in {package_dir}",
                              error=lambda m: ModuleNotFoundError(m, name="affectflow"))
    folder = str(Path(affectflow.__file__).parent)
    assert str(e.value) == f"{str(Path(folder, 'data', 'nope.bin'))!r} not in {folder}" and e.value.name == "affectflow"


def test_resumable_folder_resumes_the_same_procedure_and_refuses_another(tmp_path):
    from affectflow.errors import RunError

    fp = fsutil.json_fingerprint({"b": 1, "a": [1, 2]})
    assert fp == fsutil.json_fingerprint({"a": [1, 2], "b": 1}) and len(fp) == 16
    assert fp != fsutil.json_fingerprint({"a": [2, 1], "b": 1})
    folder, doc = fsutil.resumable_folder(tmp_path / "s", marker="s.json", fingerprint=fp, what="sweep folder",
                                          differs="holds another.")
    assert folder.is_dir() and doc is None
    fsutil.write_json(folder / "s.json", {"fingerprint": fp, "cells": [1]})
    assert fsutil.resumable_folder(folder, marker="s.json", fingerprint=fp, what="sweep folder",
                                   differs="-")[1] == {"fingerprint": fp, "cells": [1]}
    with pytest.raises(RunError, match=r"^Sweep folder '.*/s' holds another\.$"):
        fsutil.resumable_folder(folder, marker="s.json", fingerprint="0" * 16, what="sweep folder",
                                differs="holds another.")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(RunError, match="not empty and holds no s.json"):
        fsutil.resumable_folder(tmp_path / "full", marker="s.json", fingerprint=fp, what="sweep folder", differs="-")
