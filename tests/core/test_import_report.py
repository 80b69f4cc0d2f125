"""The shared pieces of the challenge importers' reports (affectflow.corpus.importreport)."""

from affectflow.corpus.importreport import ChallengeImportReport, warning_lines


def test_files_keeps_the_suffix_skips_hidden_entries_and_counts_the_rest(tmp_path):
    for name in ["b.txt", "a.txt", ".hidden.txt", "notes.md"]:
        (tmp_path / name).write_text("")
    (tmp_path / "dir.txt").mkdir()
    report = ChallengeImportReport(source=str(tmp_path), layout="x")
    kept = list(report.files(sorted(tmp_path.iterdir()), ".txt", expected="a <name>.txt file"))
    assert [f.name for f in kept] == ["a.txt", "b.txt"]
    assert report.counts["files ignored"] == 2
    assert report.warnings == [f"{tmp_path / 'dir.txt'}: ignored (not a <name>.txt file)",
                               f"{tmp_path / 'notes.md'}: ignored (not a <name>.txt file)"]


def test_warning_lines_show_the_first_twenty_then_the_count():
    assert warning_lines(["w1", "w2"]) == ["  warning: w1", "  warning: w2"]
    lines = warning_lines([f"w{i}" for i in range(23)])
    assert len(lines) == 21 and lines[19] == "  warning: w19"
    assert lines[-1] == "  ... and 3 more warnings (see reports/import.json)"
    report = ChallengeImportReport(source="src", layout="x", recordings={"train": 1}, warnings=["w"] * 21)
    assert report.summary().splitlines()[-1] == "  ... and 1 more warnings (see reports/import.json)"
