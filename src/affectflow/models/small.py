"""Small hyperparameters for every registered regression architecture, for quick runs, tests and benchmarks.

``MODELS.build(name, SMALL_SETTINGS[name], input_dims=..., targets=...)`` gives a model that trains in seconds on
the synthetic corpus (feature sets ``acoustic``, ``visual``, ``physio``). ``afg_jdev`` (a classifier plus a
regressor) is not listed: it needs class targets.
"""

from __future__ import annotations

SMALL_SETTINGS: dict[str, dict] = {
    "gru": {"d_model": 32, "d_fc": 16},
    "composite": {
        "fusion": {
            "type": "afg",
            "d_model": 32,
            "structure": "hierarchical",
            "primary": ["acoustic", "physio"],
        },
        "encoder": {"type": "gru", "hidden_size": 32},
    },
    "lstm": {"hidden_size": 32},
    "sa_lstm": {"d_attn": 32, "hidden_size": 32, "lstm_layers": 1},
    "gcnn_lstm": {"channels": 32, "hidden_size": 32},
    "transformer": {"d_model": 32, "dim_feedforward": 64, "num_layers": 1},
    "tcn": {"channels": [32, 32, 32]},
    "mbconv": {"channels": [32, 32]},
    "way1": {"d_model": 32, "dim_feedforward": 64, "transformer_layers": 1},
    "way2": {"d_model": 32, "lstm_hidden": 32},
    "way3": {"d_model": 32, "dim_feedforward": 64, "transformer_layers": 1, "lstm_hidden": 32},
    "way4": {"mbconv_channels": [32], "lstm_hidden": 32},
    "way5": {"d_model": 32, "mbconv_channels": [32], "lstm_hidden": 32},
    "way6": {
        "d_model": 32,
        "dim_feedforward": 64,
        "transformer_layers": 1,
        "mbconv_channels": [32],
        "lstm_hidden": 32,
    },
    "late_fusion_bilstm": {
        "encoder": {"type": "sa_lstm", "d_attn": 32, "hidden_size": 32, "lstm_layers": 1},
        "encoders": {
            "acoustic": [
                {"type": "sa_lstm", "d_attn": 32, "hidden_size": 32, "lstm_layers": 1},
                {"type": "gcnn_lstm", "channels": 32, "hidden_size": 32},
            ]
        },
        "hidden_size": 16,
    },
    "late_average": {"encoder": {"type": "lstm", "hidden_size": 32}},
    "leader_follower_tcn": {"channels": [32, 32, 32], "d_modal": 16, "leader": "visual"},
    "channel_attention_tcn": {"channels": [32, 32, 32], "d_model": 32},
    "sent_multitask": {
        "branches": [
            {"features": ["acoustic"], "model": {"type": "lstm", "hidden_size": 32}},
            {"features": ["acoustic", "visual", "physio"], "model": {"type": "way2", "d_model": 32, "lstm_hidden": 32}},
        ],
        "shared": 32,
    },
}
