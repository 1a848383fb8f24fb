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


def forward_rows(model, values):
    """``model``'s outputs (numpy) for every row of ``values`` (``{input name: column}``), in one batch."""
    import torch

    from automm.data import BatchCollator, MultimodalDataset

    encoders = dict(model.encoders.items())
    dataset = MultimodalDataset(values, encoders)
    batch = BatchCollator(encoders)([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        return model(batch["inputs"], batch["masks"]).numpy()
