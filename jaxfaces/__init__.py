"""jaxfaces: face image translation between photos and paintings, in JAX/Flax."""

__version__ = "0.1.0"
