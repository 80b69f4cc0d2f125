"""The on-disk corpus and the importers of challenge layouts."""

from affectflow.corpus.corpus import TIME, Corpus, FeatureSetInfo, LabelSetInfo, atomic_write, write_json

__all__ = ["TIME", "Corpus", "FeatureSetInfo", "LabelSetInfo", "atomic_write", "write_json"]
