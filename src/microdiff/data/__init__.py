"""Data: micrographs in, training sets and synthetic truth out.

- ``io``: the one image path (read PNG/TIFF/JPEG/BMP/NPY and label maps; crop,
  resample, write atomically; class folders); ``volumes``: volume files (3-D .npy, TIFF stacks).
- ``encoding``: how images become the network's channels (gray, RGB, one-hot phases) and back;
  ``channels``: a training set in memory in its data set's encoding (``load_class_images``) and
  the value counts per class that a model keeps of it (``value_counts``, ``class_shares``,
  ``share_above``).
- ``transforms``: the dihedral group D4 for prepare and training.
- ``dataset``: ``DatasetWriter`` (a data set written into a partial folder, then renamed) and
  ``read_manifest``.
- ``prepare``: ``microdiff prepare``, one engine and one module per importer.
- ``fiber``, ``synth``: the synthetic fiber composites (``synth_fiber``); ``synth3d``: 3D truth
  with micrograph-like sections (``synth_3d``); ``layers``: layered micrographs with known truth
  (``synth_layers``).
- ``layout``: where each training crop lies in its source (``read_regions``), for layout models.
- ``figures``: image grids and orthogonal slices as arrays.
"""
