"""The network and its training checkpoints.

- ``network``: ``build_unet`` (diffusers ``UNet2DModel``, equal to improved-diffusion's U-Net
  for a ``ModelConfig``), ``unet_kwargs``; ``RegionEmbedding``, a layout model's class embedding
  (the class label and where the window lies in its source).
- ``checkpoint``: ``RUN/checkpoints/step_N/`` as safetensors + JSON, written atomically
  (``save_checkpoint``, ``load_checkpoint``, ``list_checkpoints``); never pickles.

The saved pipeline folder that bundles the network with its config is ``generate.pipeline``.
"""
