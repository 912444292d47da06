"""bnnlv: Bayesian neural networks with latent variables, trained by black-box α-divergence."""

__version__ = "0.1.0"
