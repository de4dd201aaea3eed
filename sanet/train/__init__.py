"""`sanet train`: train and fine-tune SANet and AdaAttN on the inference definitions (sanet.models, the shared VGG)
with the losses of sanet.models.losses.

    recipes.py     each model's released training defaults, as data (no torch)
    data.py        image folders (recursive, unreadable files skipped) and batches as functions of (seed, iteration)
    loop.py        Settings → train(): the loop, resume, precision, progress, log, previews
    checkpoint.py  the run folder: public-layout checkpoints, training state, atomic writes
    report.py      preview grids, the loss log, `sanet train --report` (matplotlib)
    progress.py    the progress bar
    command.py     the `sanet train` command line (no torch until a run starts)

Nothing is imported here: `sanet --help` stays torch-free.
"""
