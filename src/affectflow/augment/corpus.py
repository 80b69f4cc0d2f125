"""``affectflow augment``: augmented copies of a corpus's training recordings, as new recordings of the corpus.

For each training recording with raw media (``media.csv``) and each copy ``k = 1 .. copies``, a new recording
``<id>+aug<seed>-<k>`` is added:

- **audio** (``audio_noise``): the recording's audio (16 kHz mono) mixed with noise at an SNR drawn uniformly from
  ``snr`` (:mod:`affectflow.augment.audio`); the noise is a random file of a folder (e.g. MUSAN ``speech/``), or
  ``babble``: other *training* speakers (recordings of other subjects of the train partitions, never devel or
  test), written as ``audio.wav``;
- **video** (``video``): every frame transformed by :mod:`affectflow.augment.image` with parameters drawn once for
  the copy (a steadily degraded camera), written as ``video.mp4`` (H.264, the source's frame rate) or, for an image
  folder (Aff-Wild2 crops), as a folder of PNG frames with the same numbers; missing crops stay missing;
- the copy has the source's subject, partition and extra columns (e.g. ``label_rate_hz``), ``augmented_from`` =
  the source id, the source's continuous labels (every label set), clip and segment labels, and its media file
  for what is not augmented.

Subject-disjoint folds (:mod:`affectflow.procedures.folds`) split by subject, so a copy always lands on the side of
its source. Every random choice comes from ``numpy.random.default_rng([seed, i, k])`` for source ``i`` (in corpus
order) and copy ``k``: the same seed gives the same files. The media files are written into a new folder
``<corpus>/media/augmented/seed<seed>`` built all-or-nothing (:func:`~affectflow.corpus.corpus.staged_folder`), then
the tables are extended as ``import-media`` does (media first, then recordings and labels). A seed used before is
refused (nothing is overwritten). Features of the copies come from the ordinary ``affectflow extract``.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from affectflow.augment.audio import babble, mix_at_snr, noise_files
from affectflow.corpus.corpus import Corpus, check_name, staged_folder
from affectflow.corpus.media import probe_duration, read_media_table, resolve_media_path, write_media_table
from affectflow.errors import ConfigError, CorpusError
from affectflow.io.audio import read_audio
from affectflow.io.video import IMAGE_EXTS, write_video

SAMPLE_RATE = 16000
AUG_COLUMN = "augmented_from"


@dataclass
class AugmentReport:
    """What :func:`augment_corpus` added."""

    corpus: str
    folder: str
    added: list[str] = field(default_factory=list)
    sources: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"{len(self.added)} augmented recordings from {self.sources} training recordings added to "
                 f"{self.corpus} (media in {self.folder}); run `affectflow extract` to compute their features."]
        lines += [f"  skipped: {s}" for s in self.skipped[:20]]
        return "\n".join(lines)


def _is_aug(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _write_wav(path: Path, x: np.ndarray) -> None:
    import soundfile as sf

    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    sf.write(str(path), (x / peak * 0.99 if peak > 1.0 else x).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")


def _augment_video_file(src: Path, dst: Path, params: dict[str, Any]) -> None:
    import av

    from affectflow.augment.image import apply_uint8  # lazy: pulls torch, which audio-only augmentation does not need

    with av.open(str(src)) as inp:
        vs = inp.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or 25
        write_video(dst, (apply_uint8(frame.to_ndarray(format="rgb24"), params) for frame in inp.decode(vs)), rate,
                    crf=18)


def _augment_image_folder(src: Path, dst: Path, params: dict[str, Any]) -> None:
    import cv2

    from affectflow.augment.image import apply_uint8  # lazy: pulls torch, which audio-only augmentation does not need

    dst.mkdir()
    for f in sorted(src.iterdir()):
        if f.suffix.lower() not in IMAGE_EXTS or not f.stem.isdigit():
            continue
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = apply_uint8(bgr[:, :, ::-1], params)
        cv2.imwrite(str(dst / f"{f.stem}.png"), np.ascontiguousarray(rgb[:, :, ::-1]))


def augment_corpus(
    corpus_path: str | Path,
    *,
    audio_noise: str | None = None,
    snr: list[float] = (5, 6, 7, 8, 9, 10, 11),
    video: list[str] | None = None,
    copies: int = 1,
    seed: int = 0,
    train_partitions: list[str] = ("train",),
    n_babble: int = 3,
    progress: bool = False,
) -> AugmentReport:
    """Add augmented copies of the training recordings (see the module docstring).

    Parameters
    ----------
    corpus_path:
        A corpus with ``media.csv``.
    audio_noise:
        ``"babble"``, a folder of noise audio files, or ``None`` (audio not augmented).
    snr:
        SNRs in dB, one drawn per copy.
    video:
        Image transforms (``brightness``, ``solarize``, ``blur``, ``rotate``, ``cutout``), or ``None``.
    copies:
        Copies per training recording.
    seed:
        Seed of every random choice; also names the copies and their media folder.
    train_partitions:
        Partitions whose recordings are copied (and the only source of babble).
    n_babble:
        Speakers summed into one babble noise.

    Raises
    ------
    ConfigError
        Nothing to do, bad values, an unknown transform, a seed already used, or no other training speaker for babble.
    CorpusError
        No raw media, or no training recording with media.
    """
    # lazy: pulls torch, which audio-only augmentation does not need
    from affectflow.augment.image import check_transforms, draw_params

    if audio_noise is None and not video:
        raise ConfigError("Nothing to augment: give --audio-noise (babble or a folder) and/or --video TRANSFORMS.")
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ConfigError(f"--copies must be an integer >= 1, got {copies!r}.")
    if not snr:
        raise ConfigError("--snr gives no ratio.")
    video = check_transforms(video) if video else []
    corpus = Corpus(corpus_path)
    media = read_media_table(corpus)
    if media.empty:
        raise CorpusError(f"Corpus {str(corpus.path)!r} has no raw media (media.csv); augment works on media files.")
    original = corpus.recordings.copy()
    recs = original.copy()
    if AUG_COLUMN not in recs.columns:
        recs[AUG_COLUMN] = ""
    recs[AUG_COLUMN] = recs[AUG_COLUMN].where(recs[AUG_COLUMN].map(_is_aug), "")
    by_media = {r["id"]: r for r in media.to_dict("records")}
    train = recs[recs["partition"].isin(list(train_partitions)) & (recs[AUG_COLUMN] == "")
                 & recs["id"].isin(list(by_media))]
    if train.empty:
        raise CorpusError(f"Corpus {str(corpus.path)!r} has no recording with media in partitions "
                          f"{list(train_partitions)} to augment.")
    folder = corpus.path.resolve() / "media" / "augmented" / f"seed{seed}"
    new_ids = [f"{rid}+aug{seed}-{k}" for rid in train["id"] for k in range(1, copies + 1)]
    taken = sorted(set(new_ids) & set(recs["id"])) or (["(media folder)"] if folder.exists() else [])
    if taken:
        raise ConfigError(f"Augmented copies with seed {seed} exist already in {str(corpus.path)!r} ({taken[:3]}); "
                          "use another --seed (nothing is overwritten).")
    for rid in new_ids:
        check_name("recording id", rid)

    audio_src = {rid: resolve_media_path(corpus, by_media[rid]["audio"] or by_media[rid]["video"]) for rid in train["id"]}
    noise_list = None
    babble_pool: dict[str, np.ndarray] = {}
    if audio_noise is not None:
        if audio_noise == "babble":
            for rid in train["id"]:
                p = audio_src[rid]
                if p is not None and not p.is_dir():
                    babble_pool[rid] = read_audio(p, SAMPLE_RATE)
        else:
            noise_list = noise_files(audio_noise)
    subj = dict(zip(recs["id"], recs["subject"]))
    report = AugmentReport(corpus=str(corpus.path), folder=str(folder), sources=len(train),
                           params={"audio_noise": audio_noise, "snr": list(snr), "video": video, "copies": copies,
                                   "seed": seed, "train_partitions": list(train_partitions), "n_babble": n_babble})
    new_rec, new_media = [], []
    plan: list[tuple[str, str, dict[str, Any]]] = []
    with staged_folder(folder, what="augmented media folder") as tmp:
        items = [(i, rid, k) for i, rid in enumerate(train["id"]) for k in range(1, copies + 1)]
        for i, rid, k in tqdm(items, desc="augmenting", unit="copy", disable=not progress, leave=False):
            rng = np.random.default_rng([seed, i, k])
            new = f"{rid}+aug{seed}-{k}"
            row = dict(by_media[rid])
            out = tmp / new
            out.mkdir()
            info: dict[str, Any] = {}
            if audio_noise is not None:
                p = audio_src[rid]
                if p is None or p.is_dir():
                    report.skipped.append(f"{rid}: no audio to add noise to")
                else:
                    x = babble_pool.get(rid)
                    x = read_audio(p, SAMPLE_RATE) if x is None else x
                    ratio = float(rng.choice(np.asarray(snr, float)))
                    if noise_list is None:
                        others = [a for r, a in babble_pool.items() if subj[r] != subj[rid]]
                        if not others:
                            raise ConfigError(f"Babble for {rid!r} needs other training speakers, but every training "
                                              "recording with audio is of the same subject; give a noise folder.")
                        noise = babble(others, len(x), rng, n_babble)
                    else:
                        noise = read_audio(noise_list[int(rng.integers(len(noise_list)))], SAMPLE_RATE)
                    _write_wav(out / "audio.wav", mix_at_snr(x, noise, ratio, rng))
                    row["audio"] = str(folder / new / "audio.wav")
                    info["snr_db"] = ratio
            if video:
                v = resolve_media_path(corpus, row["video"])
                if v is None:
                    report.skipped.append(f"{rid}: no video to transform")
                else:
                    params = draw_params(rng, video)
                    if v.is_dir():
                        _augment_image_folder(v, out / "video", params)
                        row["video"] = str(folder / new / "video")
                    else:
                        if not row.get("audio"):  # the audio track stays the source's
                            row["audio"] = str(v)
                        _augment_video_file(v, out / "video.mp4", params)
                        row["video"] = str(folder / new / "video.mp4")
                    info["video"] = params
            row["id"] = new
            new_media.append(row)
            plan.append((rid, new, info))
        # probe what was written (as import-media does) before anything is registered
        for row in new_media:
            for kind in ("audio", "video"):
                p = Path(str(row[kind])) if row.get(kind) else None
                if p is not None and str(p).startswith(str(folder)):
                    staged = tmp / p.relative_to(folder)
                    if kind == "audio" or staged.suffix == ".mp4":
                        probe_duration(staged, kind)
        pd.DataFrame([{"id": n, "augmented_from": r, **{k: str(v) for k, v in inf.items()}}
                      for r, n, inf in plan]).to_csv(tmp / "augment.csv", index=False)

    # register: media first (as import-media), then recordings, then labels
    src_rows = recs.set_index("id")
    for rid, new, _ in plan:
        r = src_rows.loc[rid].to_dict()
        new_rec.append({"id": new, **r, AUG_COLUMN: rid})
    try:
        write_media_table(corpus, pd.concat([media, pd.DataFrame(new_media)], ignore_index=True))
        corpus.set_recordings(pd.concat([recs, pd.DataFrame(new_rec)], ignore_index=True))
        for name in corpus.label_sets:
            for rid, new, _ in plan:
                lab = corpus.read_labels(rid, name)
                if lab is not None:
                    corpus.write_labels(new, lab, name)
        ids = {rid: [n for r, n, _ in plan if r == rid] for rid, _, _ in plan}
        clips = corpus.clips()
        if clips is not None and clips["recording"].isin(list(ids)).any():
            extra = [dict(row, recording=n) for row in clips.to_dict("records") for n in ids.get(row["recording"], [])]
            corpus.write_clips(pd.concat([clips, pd.DataFrame(extra)], ignore_index=True))
        seg = corpus.segments()
        if seg is not None and seg["recording"].isin(list(ids)).any():
            extra = [dict(row, recording=n) for row in seg.to_dict("records") for n in ids.get(row["recording"], [])]
            corpus.write_segments(pd.concat([seg, pd.DataFrame(extra)], ignore_index=True))
    except BaseException:
        # undo: the tables as they were, no labels or media of the copies
        write_media_table(corpus, media)
        corpus.set_recordings(original)
        for name in corpus.label_sets:
            for _, new, _ in plan:
                corpus.label_file(new, name).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    report.added = [n for _, n, _ in plan]
    corpus.write_report(f"augment_seed{seed}", asdict(report))
    return report
