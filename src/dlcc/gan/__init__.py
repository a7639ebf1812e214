"""GANs: losses (`losses`), sample measures (`metrics`), the trainer (`trainer`), sample
grids and the training GIF (`images`), and ``dlcc gan sample|evaluate`` (`commands`).

The networks are in `dlcc.models.gan`. Importing this package is cheap.
"""
