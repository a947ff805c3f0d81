"""kgrec: a knowledge-graph recommender for e-commerce."""

__version__ = "0.1.0"
