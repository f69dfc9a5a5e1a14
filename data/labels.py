"""The label convention every dataset, loss and metric shares.

A mask holds class ids 0..C-1 per pixel; `IGNORE_INDEX` (255) marks pixels that no loss and no
metric counts (void labels, padding, unlabelled video frames). One home for the value: every
other module imports it from here.
"""

IGNORE_INDEX = 255
