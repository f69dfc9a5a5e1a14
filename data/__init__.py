"""segnas' data layer: tfds builders and mappings, joint image+mask ops, metrics, batching.

`data.pipeline` is the entry point the trainer uses (`dataset_info`, `train_batches`,
`eval_batches`, `default_data_config`); the other modules are what it is built from.
"""
