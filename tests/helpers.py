"""Small settings that keep estimator tests CPU-sized (seconds each)."""

TINY = dict(
    encoders={"image": {"name": "cnn", "image_size": 32, "width": 8, "depth": 2, "output_dim": 32},
              "text": {"name": "hashed_ngram", "n_buckets": 4096, "emb_dim": 32, "output_dim": 32}},
    fusion={"name": "concat", "proj_dim": 32, "hidden_dim": 32},
    max_epochs=2, batch_size=32, num_workers=0, random_state=0,
)


def tiny(**overrides):
    params = dict(TINY)
    params.update(overrides)
    return params
